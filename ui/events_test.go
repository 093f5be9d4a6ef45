package ui_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// eventsDAG's runs hold at the gate "ev" until the test opens it. It is
// paused, so that the scheduler makes no run of it by itself, and daily,
// so that it can be backfilled.
const eventsDAG = `
id: ev
schedule: "@daily"
start_date: 2026-01-01
paused: true
tasks:
  - id: work
    plugin: shell
    with: {command: "read gate < gates/ev"}
`

// only returns the events that keep accepts, in order.
func only(events []ui.Event, keep func(ui.Event) bool) []ui.Event {
	var out []ui.Event
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// eventStream is an open GET /api/v1/events.
type eventStream struct {
	events <-chan ui.Event
	done   <-chan error // what ReadEvents returned
	cancel context.CancelFunc
}

// openEvents opens the event stream at url (the query included) with the
// given header and reads its events in the background.
func openEvents(t *testing.T, client *http.Client, url string, header http.Header) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	events, done := make(chan ui.Event, 100), make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		done <- ui.ReadEvents(resp.Body, func(e ui.Event) error {
			select {
			case events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return &eventStream{events: events, done: done, cancel: cancel}
}

// until collects events up to and including the first that last accepts.
func (es *eventStream) until(t *testing.T, last func(ui.Event) bool) []ui.Event {
	t.Helper()
	var got []ui.Event
	for {
		select {
		case e := <-es.events:
			got = append(got, e)
			if last(e) {
				return got
			}
		case err := <-es.done:
			t.Fatalf("the stream ended (%v) after %+v", err, got)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out; events so far: %+v", got)
		}
	}
}

func isRun(runID string, state store.RunState) func(ui.Event) bool {
	return func(e ui.Event) bool { return e.Kind == "run" && e.RunID == runID && e.State == string(state) }
}

// isLastOf accepts the last change of a run of one task that succeeds: the
// scheduler commits the run's end with its task's, the try last.
func isLastOf(runID string) func(ui.Event) bool {
	return func(e ui.Event) bool {
		return e.Kind == "try" && e.RunID == runID && e.State == string(store.TaskSuccess)
	}
}

// upTo returns events up to and including the first that last accepts.
func upTo(events []ui.Event, last func(ui.Event) bool) []ui.Event {
	if i := slices.IndexFunc(events, last); i >= 0 {
		return events[:i+1]
	}
	return events
}

// TestEventStream watches what the scheduler commits while it runs two
// runs of ev (held at a gate), a backfill of it and a run of adhoc,
// through an unfiltered stream and streams filtered by run, by DAG and by
// another DAG: each filtered stream carries exactly the unfiltered
// stream's events that its filter accepts, in order.
func TestEventStream(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, eventsDAG)
	gate := k.Gate("ev")
	run := trigger(t, k, "ev", "2026-03-01T00:00:00Z", nil)
	k.WaitTask("ev", run.RunID, "work", store.TaskRunning)
	// Every stream starts after the same change: a commit made while
	// they open (the try's start is committed lazily) is in all of them.
	url := srv.URL + "/api/v1/events"
	from := fmt.Sprintf("%s?after=%d", url, k.Store().LastChange())
	all := openEvents(t, http.DefaultClient, from, nil)
	ofRun := openEvents(t, http.DefaultClient, from+"&dag=ev&run="+run.RunID, nil)
	ofDAG := openEvents(t, http.DefaultClient, from+"&dag=ev", nil)
	ofAdhoc := openEvents(t, http.DefaultClient, from+"&dag=adhoc", nil)

	// While run holds: another run of ev, a backfill of it and a whole
	// run of adhoc. Then run ends: the last change each stream waits for.
	other := trigger(t, k, "ev", "2026-03-02T00:00:00Z", nil)
	k.WaitTask("ev", other.RunID, "work", store.TaskRunning)
	if r := call(t, "POST", srv.URL+"/api/v1/dags/ev/backfills", `{"from": "2026-01-02", "to": "2026-01-02"}`); r.status != http.StatusCreated {
		t.Fatalf("backfill: %d %s", r.status, r.body)
	}
	k.WaitTask("ev", "backfill__2026-01-02T00:00:00Z", "work", store.TaskRunning)
	adhoc := trigger(t, k, "adhoc", "", nil)
	k.WaitRun("adhoc", adhoc.RunID, store.RunSuccess)
	gate.Open()

	got := all.until(t, isLastOf(run.RunID))
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Errorf("unfiltered: seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	kinds := map[string]bool{}
	for _, e := range got {
		kinds[e.Kind+" of "+e.DAGID] = true
	}
	for _, want := range []string{"run of ev", "task of ev", "try of ev", "backfill of ev", "run of adhoc", "task of adhoc", "try of adhoc"} {
		if !kinds[want] {
			t.Errorf("unfiltered: no %s event in %+v", want, got)
		}
	}

	gotRun := ofRun.until(t, isLastOf(run.RunID))
	if diff := cmp.Diff(only(got, func(e ui.Event) bool { return e.DAGID == "ev" && e.RunID == run.RunID }), gotRun); diff != "" {
		t.Errorf("?dag&run (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(gotRun, isRun(run.RunID, store.RunSuccess)) {
		t.Errorf("?dag&run: no run success in %+v", gotRun)
	}
	gotDAG := ofDAG.until(t, isLastOf(run.RunID))
	if diff := cmp.Diff(only(got, func(e ui.Event) bool { return e.DAGID == "ev" }), gotDAG); diff != "" {
		t.Errorf("?dag (-want +got):\n%s", diff)
	}
	for _, want := range []func(ui.Event) bool{
		func(e ui.Event) bool { return e.RunID == other.RunID },
		func(e ui.Event) bool { return e.Kind == "backfill" && e.BackfillID == "bf-1" },
	} {
		if len(only(gotDAG, want)) == 0 {
			t.Errorf("?dag: the other run or the backfill missing from %+v", gotDAG)
		}
	}
	adhocEvents := ofAdhoc.until(t, isLastOf(adhoc.RunID))
	if diff := cmp.Diff(upTo(only(got, func(e ui.Event) bool { return e.DAGID == "adhoc" }), isLastOf(adhoc.RunID)), adhocEvents); diff != "" {
		t.Errorf("?dag=adhoc (-want +got):\n%s", diff)
	}
	// The scheduler commits a manual run running, with its first task
	// queued.
	if adhocEvents[0].Kind != "run" || adhocEvents[0].RunID != adhoc.RunID || adhocEvents[0].State != "running" {
		t.Errorf("?dag=adhoc: %+v, want the run running first", adhocEvents)
	}

	// Last-Event-ID and ?after resume after a change; the raw events carry
	// the sequence number as id and the kind as the event's name.
	first := gotRun[0].Seq
	for name, header := range map[string]http.Header{"Last-Event-ID": {"Last-Event-Id": {strconv.FormatUint(first, 10)}}, "after": nil} {
		target := url + "?dag=ev&run=" + run.RunID
		if header == nil {
			target += "&after=" + strconv.FormatUint(first, 10)
		}
		resumed := openEvents(t, http.DefaultClient, target, header).until(t, isLastOf(run.RunID))
		if diff := cmp.Diff(gotRun[1:], resumed); diff != "" {
			t.Errorf("resumed with %s (-want +got):\n%s", name, diff)
		}
	}
	i := slices.IndexFunc(got, func(e ui.Event) bool { return e.Kind == "try" && e.DAGID == "ev" })
	if i < 1 {
		t.Fatalf("no try event of ev after the first event in %+v", got)
	}
	try := got[i]
	raw := rawEvents(t, url+"?after="+strconv.FormatUint(got[i-1].Seq, 10), 1)
	seq := strconv.FormatUint(try.Seq, 10)
	want := "id: " + seq + "\nevent: try\ndata: {\"seq\":" + seq +
		`,"kind":"try","dag_id":"ev","run_id":"` + try.RunID + `","task_id":"work","try_number":1,"state":"` + try.State + `"}` + "\n\n"
	if raw != want {
		t.Errorf("raw event = %q\nwant %q", raw, want)
	}

	// A number from before this store's first change: the stream says
	// that changes were lost, at the newest change (the backfill and the
	// other run may still be committing theirs).
	before := k.Store().LastChange()
	lost := openEvents(t, http.DefaultClient, url, http.Header{"Last-Event-Id": {"1"}}).until(t, func(ui.Event) bool { return true })
	if after := k.Store().LastChange(); lost[0].Kind != ui.EventLost || lost[0].Seq < before || lost[0].Seq > after {
		t.Errorf("resuming after 1: %+v, want a lost event at the newest change, %d to %d", lost[0], before, after)
	}
}

// rawEvents reads the first n events of a stream as sent, keep-alive
// comments included.
func rawEvents(t *testing.T, url string, n int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var out strings.Builder
	for n > 0 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", out.String(), err)
		}
		out.WriteString(line)
		if line == "\n" {
			n--
		}
	}
	return out.String()
}

func TestEventStreamBadRequests(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	run := trigger(t, k, "adhoc", "", nil)
	url := srv.URL + "/api/v1/events"
	call(t, "GET", url+"?run="+run.RunID, "").wantError(t, 400, "run", "needs dag")
	call(t, "GET", url+"?dag=churn&run=nope", "").wantError(t, 404, `run "nope"`)
	call(t, "GET", url+"?dag=nope", "").wantError(t, 404, `DAG "nope"`)
	call(t, "GET", url+"?after=soon", "").wantError(t, 400, "after")
	callHeader(t, "GET", url, "", http.Header{"Last-Event-ID": {"-3"}}).wantError(t, 400, "Last-Event-ID", `"-3"`)
}

// TestEventStreamKeepAlive checks that a quiet stream sends comments, and
// that they carry the id of the changes its filter left out: those of a
// whole run of another DAG, which has ended before the stream opens (the
// Kiln is quiet then: nothing else is due).
func TestEventStreamKeepAlive(t *testing.T) {
	t.Parallel()
	k := kilntest.New(t, churnDAG, manualDAG, numberDAG)
	s := ui.New(k.Scheduler, ui.Options{})
	s.SetKeepAlive(5 * time.Millisecond)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	after := k.Store().LastChange()
	// A run of another DAG than adhoc, waited for up to its last change:
	// its try's end, which the scheduler may commit after the run's.
	run := trigger(t, k, "n", "", map[string]any{"n": 1})
	k.WaitFor("the try of "+run.RunID+" to succeed", func() bool {
		try, err := k.Store().GetTry("n", run.RunID, "a", 1)
		return err == nil && try.State == store.TaskSuccess
	})
	k.WaitRun("n", run.RunID, store.RunSuccess)
	if k.Store().LastChange() == after {
		t.Fatal("the run changed nothing in the store")
	}
	raw := rawEvents(t, srv.URL+"/api/v1/events?dag=adhoc&after="+strconv.FormatUint(after, 10), 1)
	if want := ": keep-alive\nid: " + strconv.FormatUint(k.Store().LastChange(), 10) + "\n\n"; raw != want {
		t.Errorf("first keep-alive = %q, want %q", raw, want)
	}
	if raw := rawEvents(t, srv.URL+"/api/v1/events?dag=adhoc", 1); raw != ": keep-alive\n\n" {
		t.Errorf("keep-alive with nothing left out = %q", raw)
	}
}

// TestEventStreamEnds checks that a stream ends when its client leaves and
// when the server shuts down, leaving no goroutine behind.
//
// The Kiln has no worker, so that no task runs while the goroutines are
// counted; its scheduler runs.
func TestEventStreamEnds(t *testing.T) {
	k := kilntest.Start(t, kilntest.Options{NoWorker: true, DAGs: []string{churnDAG, manualDAG}})
	s := ui.New(k.Scheduler, ui.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + ln.Addr().String() + "/api/v1/events"
	// Let the server's goroutines start before taking the baseline: a
	// request served end to end.
	if r := call(t, "GET", "http://"+ln.Addr().String()+"/healthz", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	http.DefaultClient.CloseIdleConnections()
	baseline := goleak.IgnoreCurrent()

	left := openEvents(t, client, url, nil)
	left.cancel()
	if err := <-left.done; !errors.Is(err, context.Canceled) {
		t.Errorf("client side: %v", err)
	}
	// The handler of the stream the client left returns.
	if err := goleak.Find(baseline); err != nil {
		t.Errorf("after the client left: %v", err)
	}

	stays := openEvents(t, client, url+"?dag=churn", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := <-stays.done; !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("the stream ended with %v at shutdown, want EOF", err)
	}
	client.CloseIdleConnections()
	if err := goleak.Find(baseline); err != nil {
		t.Errorf("after shutdown: %v", err)
	}
}
