package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// command is a request from another goroutine, applied by the loop. Its
// reply is sent after the turn's writes are committed.
type command struct {
	apply func(now time.Time) (any, error)
	reply chan result
}

type result struct {
	val any
	err error
}

// eventMsg is a worker event, the worker that sent it (the token of its
// subject, which NATS permissions tie to the sender's identity) and the
// JetStream message to ack once its effect is committed.
type eventMsg struct {
	ev     wire.Event
	worker string
	msg    jetstream.Msg
}

// turn collects the effects of one loop turn: writes to commit together,
// then assignments to publish, events to ack and commands to answer.
type turn struct {
	runs      map[runKey]*store.Run
	tis       map[tiKey]*store.TaskInstance
	tries     map[wire.TryKey]*store.Try
	states    map[string]*store.DAGState
	pools     map[string]int // slots; -1 deletes
	backfills map[string]*store.Backfill
	assign    []*wire.Assignment
	cancels   []wire.Cancel
	acks      []jetstream.Msg
	checks    []checkRequest
	replies   []func(error)
	// endedInDispatch is set when a task instance ended while being
	// dispatched, so that the turn advances its run again; more, when the
	// turn stopped doing so with tasks still ending there, so that the
	// next turn follows at once.
	endedInDispatch bool
	more            bool
	// lazyTIs and lazyTries are the task instances and tries in tis and
	// tries that only started events wrote: a turn that wrote nothing else
	// may leave its commit to a later turn (see deferrable).
	lazyTIs   map[tiKey]bool
	lazyTries map[wire.TryKey]bool
	// cache and refs are task cache entries and artifact references to
	// store (cache.go).
	cache []*store.CacheEntry
	refs  []artifactRefs
	// notes are lines for the logs of tries no worker runs, written by
	// the sender once the turn is committed, off the loop.
	notes []tryNote
	// datasetEvents are dataset events to store; datasetQueues the DAGs'
	// queues of them that changed, as they are now (datasets.go).
	datasetEvents []*store.DatasetEvent
	datasetQueues map[queueKey]bool
}

func newTurn() *turn {
	return &turn{
		runs:      map[runKey]*store.Run{},
		tis:       map[tiKey]*store.TaskInstance{},
		tries:     map[wire.TryKey]*store.Try{},
		states:    map[string]*store.DAGState{},
		pools:     map[string]int{},
		backfills: map[string]*store.Backfill{},
		lazyTIs:   map[tiKey]bool{},
		lazyTries: map[wire.TryKey]bool{},

		datasetQueues: map[queueKey]bool{},
	}
}

// lazyCommitDelay bounds how long a turn that only took started events
// waits for a later turn to commit it. A task's start then reaches the
// store, and the pages, at most this late; its finish, which a task of a
// few milliseconds sends within that time, shares the commit, and a chain
// of tasks costs one commit per task instead of two. The events are acked
// only after the commit, so a crash meanwhile loses nothing: JetStream
// delivers them again.
const lazyCommitDelay = 100 * time.Millisecond

// deferrable reports whether all the turn did was to mark tries started:
// no other write, nothing to send but acks, no command waiting for it.
func (t *turn) deferrable() bool {
	return len(t.tis) == len(t.lazyTIs) && len(t.tries) == len(t.lazyTries) &&
		len(t.runs) == 0 && len(t.states) == 0 && len(t.cache) == 0 && len(t.refs) == 0 && len(t.notes) == 0 && len(t.pools) == 0 && len(t.backfills) == 0 &&
		len(t.datasetEvents) == 0 && len(t.datasetQueues) == 0 &&
		len(t.assign) == 0 && len(t.cancels) == 0 && len(t.checks) == 0 && len(t.replies) == 0
}

// batch gathers the turn's writes for one commit, with the DAGs' dataset
// queues as queues holds them now. Runs go first: the store refuses task
// instances of a run it does not know.
func (t *turn) batch(queues map[string]map[string][]store.DatasetEvent) *store.Batch {
	b := &store.Batch{}
	b.Grow(len(t.runs) + len(t.tis) + len(t.tries))
	for _, r := range t.runs {
		b.PutRun(r)
	}
	// Task instances and tries go in key order: bbolt inserts a key into
	// its page by moving those after it, so a mapped task's thousands of
	// instances, put in a map's order, would cost time quadratic in
	// their number.
	tis := slices.AppendSeq(make([]tiKey, 0, len(t.tis)), maps.Keys(t.tis))
	slices.SortFunc(tis, func(a, b tiKey) int {
		return cmp.Or(strings.Compare(a.dagID, b.dagID), strings.Compare(a.runID, b.runID), strings.Compare(a.taskID, b.taskID))
	})
	put := make([]*store.TaskInstance, len(tis))
	for i, k := range tis {
		put[i] = t.tis[k]
	}
	b.PutTaskInstances(put)
	tries := slices.AppendSeq(make([]wire.TryKey, 0, len(t.tries)), maps.Keys(t.tries))
	slices.SortFunc(tries, func(a, b wire.TryKey) int {
		return cmp.Or(strings.Compare(a.DAGID, b.DAGID), strings.Compare(a.RunID, b.RunID), strings.Compare(a.TaskID, b.TaskID), cmp.Compare(a.Try, b.Try))
	})
	for _, k := range tries {
		b.PutTry(t.tries[k])
	}
	for _, st := range t.states {
		b.PutDAGState(st)
	}
	for _, e := range t.cache {
		b.PutCacheEntry(e)
	}
	for _, r := range t.refs {
		b.RefArtifacts(r.arts, r.at)
	}
	for _, bf := range t.backfills {
		b.PutBackfill(bf)
	}
	for _, e := range t.datasetEvents {
		b.PutDatasetEvent(e)
	}
	for k := range t.datasetQueues {
		b.PutDatasetQueue(k.dagID, k.uri, queues[k.dagID][k.uri])
	}
	for name, slots := range t.pools {
		if slots < 0 {
			b.DeletePool(name)
		} else {
			b.PutPool(store.Pool{Name: name, Slots: slots})
		}
	}
	return b
}

// maxBatch bounds how many events one turn applies, keeping turns short.
const maxBatch = 1024

func (s *Scheduler) loop(ctx context.Context) error {
	wake := s.clock.After(0)
	defer s.metrics.loopRunning()()
	for {
		if s.lazy == nil {
			s.t = newTurn()
		} else {
			s.t = s.lazy // goes on collecting, for one commit
		}
		select {
		case <-ctx.Done():
			return nil
		case c := <-s.cmds:
			s.applyCommand(c)
		case em := <-s.events:
			s.applyEvent(em)
		case fb := <-s.feedback:
			s.applyFeedback(fb)
		case set := <-s.sets:
			s.applySet(set)
		case <-wake:
		}
		woke := time.Now()
		// Take whatever else is waiting, so that one commit covers it.
	drain:
		for n := 0; n < maxBatch; n++ {
			select {
			case c := <-s.cmds:
				s.applyCommand(c)
			case em := <-s.events:
				s.applyEvent(em)
			case fb := <-s.feedback:
				s.applyFeedback(fb)
			default:
				break drain
			}
		}
		now, err := s.endTurn(ctx)
		if err != nil {
			// The loop's state is now ahead of the store: stop, and let a
			// restart rebuild it from what was committed.
			return err
		}
		s.metrics.turnDuration.Observe(time.Since(woke).Seconds())
		wake = s.clock.After(s.nextWake(now))
	}
}

// endTurn does a turn's time-driven and scheduling work on what its
// inputs changed, commits the turn and hands its effects to the sender.
// It returns the time the turn ran at.
func (s *Scheduler) endTurn(ctx context.Context) (time.Time, error) {
	now := s.clock.Now()
	s.tick(now)
	s.schedule(now)
	return now, s.flush(ctx)
}

// applyFeedback takes what the sender learned from JetStream.
func (s *Scheduler) applyFeedback(fb feedback) {
	now := s.clock.Now()
	for _, p := range fb.published {
		s.published(p, now)
	}
	for _, c := range fb.checked {
		s.checked(c, now)
	}
}

func (s *Scheduler) applyCommand(c command) {
	v, err := c.apply(s.clock.Now())
	s.t.replies = append(s.t.replies, func(commitErr error) {
		if err == nil {
			err = commitErr
		}
		c.reply <- result{val: v, err: err}
	})
}

// do runs fn on the loop goroutine and waits until its effects are committed.
func (s *Scheduler) do(ctx context.Context, fn func(now time.Time) (any, error)) (any, error) {
	c := command{apply: fn, reply: make(chan result, 1)}
	select {
	case s.cmds <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.val, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// flush commits the turn's writes in one transaction, then hands its
// effects to the sender and answers its commands. Nothing leaves the
// process before its state is durable.
func (s *Scheduler) flush(ctx context.Context) error {
	t := s.t
	if t.deferrable() && (s.lazy == nil || s.clock.Now().Sub(s.lazySince) < lazyCommitDelay) {
		if s.lazy == nil && (len(t.tis) > 0 || len(t.acks) > 0) {
			s.lazy, s.lazySince = t, s.clock.Now()
		}
		return nil
	}
	s.lazy = nil
	b := t.batch(s.datasetQueues)
	var err error
	if b.Len() > 0 || b.Err() != nil {
		begun := time.Now()
		if err = s.cfg.Store.Commit(ctx, b); err != nil {
			err = fmt.Errorf("committing to the store: %w", err)
			s.setHealth(err)
		}
		s.metrics.commitDuration.Observe(time.Since(begun).Seconds())
	}
	if err == nil {
		e := effects{cancels: t.cancels, acks: t.acks, checks: t.checks, notes: t.notes}
		for _, a := range t.assign {
			if f := s.flights[a.TryKey]; f != nil {
				e.assign = append(e.assign, outgoing{a: a, gen: f.gen})
			}
		}
		s.sender.send(e)
	}
	if err == nil {
		for k := range t.runs {
			if ar := s.active[k]; ar != nil && ar.run.State.Finished() {
				s.metrics.runEnded(ar)
				delete(s.active, k)
			}
		}
		if len(t.states) > 0 {
			s.publishView()
		}
	}
	// A failed commit leaves events unacked: they are redelivered and
	// applied again after the restart.
	for _, r := range t.replies {
		r(err)
	}
	return err
}

// nextWake is how long the loop may sleep: until the next cron tick,
// retry, check of a lost assignment or heartbeat check.
func (s *Scheduler) nextWake(now time.Time) time.Duration {
	if s.t.more {
		return 0
	}
	next := now.Add(s.cfg.HeartbeatTimeout / 4)
	for _, at := range s.nextCron {
		if !at.IsZero() && at.Before(next) {
			next = at
		}
	}
	for _, ar := range s.active {
		for _, ti := range ar.tis {
			if (ti.State == store.TaskUpForRetry || ti.State == store.TaskUpForReschedule) && ti.NotBefore.Before(next) {
				next = ti.NotBefore
			}
		}
	}
	if at := s.nextCheck(); !at.IsZero() && at.Before(next) {
		next = at
	}
	wait := next.Sub(now)
	if s.lazy != nil {
		wait = min(wait, lazyCommitDelay-now.Sub(s.lazySince))
	}
	return max(wait, time.Millisecond)
}

// applySet takes a freshly loaded DAG folder.
func (s *Scheduler) applySet(set *dag.Set) {
	now := s.clock.Now()
	s.logDAGChanges(maps.Clone(s.dags), set)
	seen := make(map[string]bool, len(set.DAGs))
	for _, d := range set.DAGs {
		seen[d.ID] = true
		old := s.dags[d.ID]
		s.dags[d.ID] = d
		if s.states[d.ID] == nil || !s.states[d.ID].Seen {
			st := &store.DAGState{DAGID: d.ID, Paused: d.Paused, Seen: true}
			s.states[d.ID] = st
			s.t.states[d.ID] = st
		}
		if old == nil || old.Hash != d.Hash {
			s.nextCron[d.ID] = now // re-plan its schedule
		}
	}
	for id := range s.dags {
		if !seen[id] {
			delete(s.dags, id)
			delete(s.nextCron, id)
		}
	}
	s.importErrs = set.ImportErrors
	s.publishView()
}

// watchFolder re-loads the DAGs folder and hands changes to the loop;
// first is the set the loop started with.
func (s *Scheduler) watchFolder(ctx context.Context, first *dag.Set) {
	tick := time.NewTicker(s.cfg.ReloadEvery)
	defer tick.Stop()
	last := setSignature(first)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		set, err := s.loadDAGs(ctx, false)
		if err != nil {
			s.log.Warn("re-loading DAGs", "err", err)
			continue
		}
		if sig := setSignature(set); set.Parsed > 0 || sig != last {
			last = sig
			select {
			case s.sets <- set:
			case <-ctx.Done():
				return
			}
		}
	}
}

// setSignature changes when the set of files, DAGs or errors changes.
func setSignature(set *dag.Set) string {
	var b []byte
	for _, d := range set.DAGs {
		b = append(b, d.ID...)
		b = append(b, d.Hash[:8]...)
	}
	for _, ie := range set.ImportErrors {
		b = append(b, ie.File...)
		b = append(b, ie.Errors.Error()...)
	}
	return string(b)
}
