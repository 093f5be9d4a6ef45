package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// The loop never waits on the network. Once a turn is committed, its
// effects — assignments to publish, cancels to send, events to ack, lost
// assignments to look for, notes for the logs of tries no worker runs —
// go to a sender, which does the I/O on its own goroutine and feeds what
// it learned back to the loop as inputs (publishResult, checkResult), as
// etcd/raft's Ready hands work to the application.

// effects are what one committed turn asks of the network.
type effects struct {
	assign  []outgoing
	cancels []wire.Cancel
	acks    []jetstream.Msg
	checks  []checkRequest
	notes   []tryNote
}

func (e *effects) empty() bool {
	return len(e.assign) == 0 && len(e.cancels) == 0 && len(e.acks) == 0 && len(e.checks) == 0 && len(e.notes) == 0
}

// tryNote is a line of Kiln's for the log of a try no worker runs.
type tryNote struct {
	key wire.TryKey
	msg string
}

// outgoing is an assignment with the generation of the try it belongs to.
type outgoing struct {
	a   *wire.Assignment
	gen uint64
}

// publishResult is JetStream's answer to one published assignment.
type publishResult struct {
	key wire.TryKey
	gen uint64
	seq uint64
	at  time.Time // when JetStream answered, by the scheduler's clock
	err error
}

// checkRequest asks whether a queued try's assignment still waits in the
// tasks stream; seq is 0 when its sequence is not known.
type checkRequest struct {
	key wire.TryKey
	gen uint64
	seq uint64
}

// checkResult answers a checkRequest; err means "could not tell".
type checkResult struct {
	key     wire.TryKey
	gen     uint64
	seq     uint64
	pending bool
	err     error
}

// feedback is what a sender reports back to the loop.
type feedback struct {
	published []publishResult
	checked   []checkResult
}

// sender does a committed turn's I/O. send must not block.
type sender interface {
	send(e effects)
}

// natsSender sends effects over NATS from its own goroutine. Effects wait
// in an unbounded queue, so a NATS outage slows nothing but the sending.
type natsSender struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	log      *slog.Logger
	feedback chan<- feedback
	now      func() time.Time // the scheduler's clock
	// note writes a tryNote to its try's log.
	note func(k wire.TryKey, msg string)
	// timeout bounds each round trip to JetStream.
	timeout time.Duration

	mu      sync.Mutex
	pending []effects
	wake    chan struct{}
}

func newNATSSender(js jetstream.JetStream, nc *nats.Conn, clock Clock, log *slog.Logger, fb chan<- feedback, note func(wire.TryKey, string)) *natsSender {
	return &natsSender{js: js, nc: nc, now: clock.Now, log: log, feedback: fb, note: note, timeout: 5 * time.Second, wake: make(chan struct{}, 1)}
}

func (n *natsSender) send(e effects) {
	if e.empty() {
		return
	}
	n.mu.Lock()
	n.pending = append(n.pending, e)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run sends queued effects, in the order they were committed, until ctx
// ends.
func (n *natsSender) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.mu.Lock()
		batch := n.pending
		n.pending = nil
		n.mu.Unlock()
		var fb feedback
		for _, e := range batch {
			fb.published = append(fb.published, n.publish(ctx, e.assign)...)
			for _, c := range e.cancels {
				n.cancel(c)
			}
			for _, m := range e.acks {
				_ = m.Ack()
			}
			for _, nt := range e.notes {
				n.note(nt.key, nt.msg)
			}
		}
		var checks []checkRequest
		for _, e := range batch {
			checks = append(checks, e.checks...)
		}
		if len(checks) > 0 {
			fb.checked = n.check(ctx, checks)
		}
		if len(fb.published) == 0 && len(fb.checked) == 0 {
			continue
		}
		select {
		case n.feedback <- fb:
		case <-ctx.Done():
			return
		}
	}
}

// publish sends assignments and waits for JetStream to store them, each
// with a message id that deduplicates a re-publish.
func (n *natsSender) publish(ctx context.Context, out []outgoing) []publishResult {
	if len(out) == 0 {
		return nil
	}
	res := make([]publishResult, len(out))
	futures := make([]jetstream.PubAckFuture, len(out))
	for i, o := range out {
		res[i] = publishResult{key: o.a.TryKey, gen: o.gen}
		data, err := json.Marshal(o.a)
		if err == nil {
			futures[i], err = n.js.PublishAsync(wire.TaskSubject(o.a.Queue), data, jetstream.WithMsgID(o.a.MsgID()))
		}
		res[i].err = err
	}
	// One deadline for the whole batch: a future not answered by then is
	// reported as an error, and the lost-try check finds out where it is.
	deadline := time.After(n.timeout)
	expired := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		if expired {
			select {
			case ack := <-f.Ok():
				res[i].seq = ack.Sequence
			case err := <-f.Err():
				res[i].err = err
			default:
				res[i].err = fmt.Errorf("no answer from JetStream within %s", n.timeout)
			}
			res[i].at = n.now()
			continue
		}
		select {
		case ack := <-f.Ok():
			res[i].seq = ack.Sequence
		case err := <-f.Err():
			res[i].err = err
		case <-deadline:
			expired = true
			res[i].err = fmt.Errorf("no answer from JetStream within %s", n.timeout)
		case <-ctx.Done():
			return nil
		}
		res[i].at = n.now()
	}
	return res
}

func (n *natsSender) cancel(c wire.Cancel) {
	data, err := json.Marshal(c)
	if err == nil {
		err = n.nc.Publish(wire.CancelSubject, data)
	}
	if err != nil {
		n.log.Warn("sending a cancel", "try", c.TryKey.String(), "err", err)
	}
}

// check answers whether each try's assignment still waits in the tasks
// stream: by its sequence when known, else by reading what the stream
// holds (after a restart, or when a publication's answer was lost).
func (n *natsSender) check(ctx context.Context, reqs []checkRequest) []checkResult {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	out := make([]checkResult, len(reqs))
	st, err := n.js.Stream(ctx, wire.TasksStream)
	var index map[wire.TryKey]uint64
	for i, r := range reqs {
		out[i] = checkResult{key: r.key, gen: r.gen, seq: r.seq, err: err}
		if err != nil {
			continue
		}
		if r.seq != 0 {
			_, gerr := st.GetMsg(ctx, r.seq)
			out[i].pending = gerr == nil
			if gerr != nil && !errors.Is(gerr, jetstream.ErrMsgNotFound) {
				out[i].err = gerr
			}
			continue
		}
		if index == nil {
			if index, err = pendingAssignments(ctx, st); err != nil {
				out[i].err = err
				continue
			}
		}
		out[i].seq, out[i].pending = index[r.key], index[r.key] != 0
	}
	return out
}

// pendingAssignments lists the assignments still waiting in the tasks
// stream, by try. A work-queue stream holds only what no worker took, so
// this reads the queued tasks, not the history.
func pendingAssignments(ctx context.Context, st jetstream.Stream) (map[wire.TryKey]uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[wire.TryKey]uint64{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var a wire.Assignment
		if json.Unmarshal(m.Data, &a) == nil {
			out[a.TryKey] = seq
		}
	}
	return out, nil
}
