package scheduler_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Marking a run success while its task sleeps on a real worker ends the
// run at once and kills the task's processes.
func TestE2EMarkRunSuccessStopsTheTask(t *testing.T) {
	e := start(t, map[string]string{"marked": `
tasks:
  - {id: nap, plugin: shell, with: {command: 'sleep 31.0417 & sleep 31.0417'}}
  - {id: after, plugin: shell, with: {command: 'true'}, depends_on: [nap]}
`}, options{workers: 1})
	r := e.trigger("marked", nil)
	e.waitFor("nap to run", 10*time.Second, func() bool { return e.taskStates(r)["nap"] == store.TaskRunning })
	e.waitFor("the sleeps to start", 5*time.Second, func() bool { return pgrep("sleep 31.0417") != "" })

	applied := e.watchFinished(tryKey(r, "nap", 1))
	changed, err := e.s.MarkRun(context.Background(), "marked", r.RunID, store.RunSuccess)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(changed, ","); got != "nap,after" {
		t.Errorf("changed = %s, want nap,after", got)
	}
	// MarkRun answers once the new states are committed.
	got, err := e.st.GetRun("marked", r.RunID)
	if err != nil || got.State != store.RunSuccess {
		t.Fatalf("run = %+v (%v), want success", got, err)
	}
	e.waitFor("the sleeps to be killed", 10*time.Second, func() bool { return pgrep("sleep 31.0417") == "" })
	// The worker's report of the stopped try changes nothing.
	applied()
	if s := e.taskStates(r); s["nap"] != store.TaskSuccess || s["after"] != store.TaskSuccess {
		t.Errorf("states = %v, want both success", s)
	}
	if tr, err := e.st.GetTry("marked", r.RunID, "nap", 1); err != nil || tr.State != store.TaskSuccess {
		t.Errorf("try = %+v (%v), want success (marked)", tr, err)
	}
	if tr, err := e.st.GetTry("marked", r.RunID, "after", 1); err == nil {
		t.Errorf("after has try %+v, want none: it was marked, never run", tr)
	}
}

// watchFinished subscribes to the finished event of try k. The function it
// returns waits until the scheduler has applied that event: the scheduler
// acks an event once the turn that applied it is committed.
func (e *env) watchFinished(k wire.TryKey) func() {
	e.t.Helper()
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	msgs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe(wire.EventSubject(wire.EventFinished, k.DAGID), msgs); err != nil {
		e.t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // subscribed before the event can be published
		e.t.Fatal(err)
	}
	return func() {
		e.t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var fin *nats.Msg
		for fin == nil {
			select {
			case m := <-msgs:
				var ev wire.Event
				if json.Unmarshal(m.Data, &ev) == nil && ev.TryKey == k {
					fin = m
				}
			case <-ctx.Done():
				e.t.Fatalf("no finished event of %s", k)
			}
		}
		// A subscriber may get the event before KILN_EVENTS has stored it.
		// Published again with its message id, as a worker retrying does,
		// it is stored once, and the answer gives its sequence.
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: fin.Subject, Header: fin.Header, Data: fin.Data})
		if err != nil {
			e.t.Fatal(err)
		}
		cons, err := js.Consumer(ctx, wire.EventsStream, wire.EventConsumerName)
		if err != nil {
			e.t.Fatal(err)
		}
		e.waitFor("the scheduler to ack the finished event of "+k.String(), 10*time.Second, func() bool {
			info, err := cons.Info(ctx)
			return err == nil && info.AckFloor.Stream >= ack.Sequence
		})
	}
}
