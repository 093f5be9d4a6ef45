//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// aftermath is how long after its repair a fault still explains a failed
// try (Injection.Explains): the servers' heartbeat timeout, for a lost
// worker's try to be failed, and twice the leader lease's TTL (~6 s), for
// a new leader to take over, with room to spare.
const aftermath = heartbeatTimeout + 12*time.Second

// waitRuns waits until the workload has n runs, all of them ended, and
// returns them.
func (c *cluster) waitRuns(ctx context.Context, n int, d time.Duration) ([]apiRun, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var runs []apiRun
	err := poll(ctx, fmt.Sprintf("%d runs to end", n), func() error {
		var err error
		if runs, err = c.runs(ctx); err != nil {
			return err
		}
		ended := 0
		for _, r := range runs {
			if r.State == "success" || r.State == "failed" {
				ended++
			}
		}
		if len(runs) < n || ended < len(runs) {
			return fmt.Errorf("%d runs, %d of them ended", len(runs), ended)
		}
		return nil
	})
	return runs, err
}

// checkRuns checks that every run succeeded and that every task instance's
// tries pass CheckTries against the injections. It logs how many
// instances ran more than once.
func (c *cluster) checkRuns(ctx context.Context, t reporter, runs []apiRun, injections []Injection) {
	t.Helper()
	retried := 0
	for _, run := range runs {
		if run.State != "success" {
			t.Errorf("run %s is %s, not success", run.RunID, run.State)
		}
		var tasks []apiTask
		if _, err := c.callAny(ctx, http.MethodGet, dagPath(run.RunID, "tasks"), nil, &tasks); err != nil {
			t.Errorf("run %s: %v", run.RunID, err)
			continue
		}
		for _, task := range tasks {
			if task.State != "success" {
				t.Errorf("run %s, task %s is %s, not success", run.RunID, task.TaskID, task.State)
			}
			var tries []apiTry
			if _, err := c.callAny(ctx, http.MethodGet, dagPath(run.RunID, "tasks", task.TaskID, "tries"), nil, &tries); err != nil {
				t.Errorf("run %s, task %s: %v", run.RunID, task.TaskID, err)
				continue
			}
			checked := make([]Try, len(tries))
			for i, tr := range tries {
				checked[i] = tr.try()
			}
			if len(tries) > 1 {
				retried++
				c.logf("run %s, task %s ran %d times: %s", run.RunID, task.TaskID, len(tries), describeTries(tries))
			}
			for _, err := range CheckTries(checked, task.MaxTries, injections, aftermath) {
				t.Errorf("run %s, task %s: %v", run.RunID, task.TaskID, err)
			}
		}
	}
	c.logf("%d runs checked; %d task instances ran more than once", len(runs), retried)
}

func describeTries(tries []apiTry) string {
	var s string
	for i, tr := range tries {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%d %s on %q %s", tr.TryNumber, tr.State, tr.Worker, span(tr.try()))
		if tr.Error != "" {
			s += fmt.Sprintf(" (%s)", tr.Error)
		}
	}
	return s
}

// logStream is the replicated log of HA mode.
const logStream = "KILN_LOG"

// readLog reads the headers of every message of the stream name (the
// replicated log, logStream), in sequence order, through the published
// NATS ports, with an ordered consumer.
func (c *cluster) readLog(ctx context.Context, name string) ([]LogRecord, error) {
	nc, err := c.natsConn()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("an ordered consumer of %s: %w", name, err)
	}
	var records []LogRecord
	for lastSeq(records) < last {
		// As many as remain, so that the fetch returns as soon as they came.
		batch, err := cons.Fetch(int(min(1000, last-lastSeq(records))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return records, fmt.Errorf("reading %s: %w", name, err)
		}
		n := 0
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				return records, err
			}
			h := msg.Headers()
			records = append(records, LogRecord{Seq: md.Sequence.Stream, Term: h.Get("Kiln-Term"), Leader: h.Get("Kiln-Leader")})
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return records, fmt.Errorf("reading %s: %w", name, err)
		}
		if n == 0 {
			return records, fmt.Errorf("reading %s: nothing more after seq %d of %d", name, lastSeq(records), last)
		}
		if err := ctx.Err(); err != nil {
			return records, err
		}
	}
	return records, nil
}

func lastSeq(records []LogRecord) uint64 {
	if len(records) == 0 {
		return 0
	}
	return records[len(records)-1].Seq
}

// checkLog reads the replicated log and checks it with CheckLog, logging
// its terms.
func (c *cluster) checkLog(ctx context.Context, t reporter) {
	t.Helper()
	// Right after a NATS server came back, JetStream may not answer yet.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var records []LogRecord
	if err := poll(rctx, "the replicated log to be read", func() error {
		var err error
		records, err = c.readLog(rctx, logStream)
		return err
	}); err != nil {
		t.Error(err)
	}
	if len(records) == 0 {
		t.Errorf("the replicated log %s has no record", logStream)
		return
	}
	terms, errs := CheckLog(records)
	for _, term := range terms {
		c.logf("log: term %d of %s: seq %d–%d, %d records", term.Term, term.Leader, term.FirstSeq, term.LastSeq, term.Records)
	}
	for _, err := range errs {
		t.Errorf("replicated log: %v", err)
	}
	leaders := map[string]bool{}
	for _, term := range terms {
		leaders[term.Leader] = true
	}
	servers := c.names(roleServer)
	for l := range leaders {
		if !slices.Contains(servers, l) {
			t.Errorf("replicated log: leader %q is none of the servers %v", l, servers)
		}
	}
}
