package ui_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/ui/uitest"
)

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

func TestEventStream(t *testing.T) {
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunQueued, store.RunTypeScheduled)
	other := putRun(b, 6, store.RunQueued, store.RunTypeScheduled)
	url := srv.URL + "/api/v1/events"
	all := openEvents(t, http.DefaultClient, url, nil)
	ofRun := openEvents(t, http.DefaultClient, url+"?dag=churn&run="+run.RunID, nil)
	ofDAG := openEvents(t, http.DefaultClient, url+"?dag=churn", nil)
	ofAdhoc := openEvents(t, http.DefaultClient, url+"?dag=adhoc", nil)

	b.Commit(func(batch *store.Batch) {
		batch.PutTaskInstance(&store.TaskInstance{DAGID: "churn", RunID: run.RunID, TaskID: "extract", State: store.TaskQueued, TryNumber: 1, MaxTries: 1})
		batch.PutTry(&store.Try{DAGID: "churn", RunID: run.RunID, TaskID: "extract", Number: 1, State: store.TaskQueued})
	})
	other.State = store.RunRunning
	b.Commit(func(batch *store.Batch) {
		batch.PutRun(other)
		batch.PutBackfill(&store.Backfill{ID: "bf-1", DAGID: "churn", State: store.BackfillRunning})
	})
	adhoc, err := b.Trigger(t.Context(), "adhoc", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run.State = store.RunSuccess
	b.Commit(func(batch *store.Batch) { batch.PutRun(run) }) // the last change each stream waits for

	ignoreSeq := cmpopts.IgnoreFields(ui.Event{}, "Seq")
	wantRun := []ui.Event{
		{Kind: "task", DAGID: "churn", RunID: run.RunID, TaskID: "extract", TryNumber: 1, State: "queued"},
		{Kind: "try", DAGID: "churn", RunID: run.RunID, TaskID: "extract", TryNumber: 1, State: "queued"},
		{Kind: "run", DAGID: "churn", RunID: run.RunID, State: "success"},
	}
	if diff := cmp.Diff(wantRun, ofRun.until(t, isRun(run.RunID, store.RunSuccess)), ignoreSeq); diff != "" {
		t.Errorf("?dag&run (-want +got):\n%s", diff)
	}
	wantDAG := append(wantRun[:2:2],
		ui.Event{Kind: "run", DAGID: "churn", RunID: other.RunID, State: "running"},
		ui.Event{Kind: "backfill", DAGID: "churn", BackfillID: "bf-1", State: "running"},
		wantRun[2])
	if diff := cmp.Diff(wantDAG, ofDAG.until(t, isRun(run.RunID, store.RunSuccess)), ignoreSeq); diff != "" {
		t.Errorf("?dag (-want +got):\n%s", diff)
	}
	got := all.until(t, isRun(run.RunID, store.RunSuccess))
	if len(got) != len(wantDAG)+2 { // and the adhoc run and its task instance
		t.Errorf("unfiltered: %d events, want %d: %+v", len(got), len(wantDAG)+2, got)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Errorf("unfiltered: seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	adhocEvents := ofAdhoc.until(t, func(e ui.Event) bool { return e.Kind == "task" })
	if adhocEvents[0].Kind != "run" || adhocEvents[0].RunID != adhoc.RunID || adhocEvents[0].State != "queued" {
		t.Errorf("?dag=adhoc: %+v", adhocEvents)
	}

	// Last-Event-ID and ?after resume after a change; the raw events carry
	// the sequence number as id and the kind as the event's name.
	first := got[0].Seq
	for name, header := range map[string]http.Header{"Last-Event-ID": {"Last-Event-Id": {strconv.FormatUint(first, 10)}}, "after": nil} {
		target := url + "?dag=churn&run=" + run.RunID
		if header == nil {
			target += "&after=" + strconv.FormatUint(first, 10)
		}
		resumed := openEvents(t, http.DefaultClient, target, header).until(t, isRun(run.RunID, store.RunSuccess))
		if diff := cmp.Diff(wantRun[1:], resumed, ignoreSeq); diff != "" {
			t.Errorf("resumed with %s (-want +got):\n%s", name, diff)
		}
	}
	raw := rawEvents(t, url+"?after="+strconv.FormatUint(first, 10), 1)
	want := "id: " + strconv.FormatUint(first+1, 10) + "\nevent: try\ndata: {\"seq\":" + strconv.FormatUint(first+1, 10) +
		`,"kind":"try","dag_id":"churn","run_id":"` + run.RunID + `","task_id":"extract","try_number":1,"state":"queued"}` + "\n\n"
	if raw != want {
		t.Errorf("raw event = %q\nwant %q", raw, want)
	}

	// A number from before this store's first change: the stream says
	// that changes were lost, at the newest change.
	lost := openEvents(t, http.DefaultClient, url, http.Header{"Last-Event-Id": {"1"}}).until(t, func(ui.Event) bool { return true })
	if want := (ui.Event{Kind: ui.EventLost, Seq: b.Store().LastChange()}); lost[0] != want {
		t.Errorf("resuming after 1: %+v, want %+v", lost[0], want)
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
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunQueued, store.RunTypeScheduled)
	url := srv.URL + "/api/v1/events"
	call(t, "GET", url+"?run="+run.RunID, "").wantError(t, 400, "run", "needs dag")
	call(t, "GET", url+"?dag=churn&run=nope", "").wantError(t, 404, `run "nope"`)
	call(t, "GET", url+"?dag=nope", "").wantError(t, 404, `DAG "nope"`)
	call(t, "GET", url+"?after=soon", "").wantError(t, 400, "after")
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Last-Event-ID", "-3")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("bad Last-Event-ID: %v %v, want 400", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}

// TestEventStreamKeepAlive checks that a quiet stream sends comments, and
// that they carry the id of the changes its filter left out.
func TestEventStreamKeepAlive(t *testing.T) {
	b := uitest.New(t, churnDAG, manualDAG)
	s := ui.New(b, ui.Options{})
	s.SetKeepAlive(5 * time.Millisecond)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	after := b.Store().LastChange()
	putRun(b, 5, store.RunQueued, store.RunTypeScheduled) // not adhoc's
	raw := rawEvents(t, srv.URL+"/api/v1/events?dag=adhoc&after="+strconv.FormatUint(after, 10), 1)
	if want := ": keep-alive\nid: " + strconv.FormatUint(b.Store().LastChange(), 10) + "\n\n"; raw != want {
		t.Errorf("first keep-alive = %q, want %q", raw, want)
	}
	if raw := rawEvents(t, srv.URL+"/api/v1/events?dag=adhoc", 1); raw != ": keep-alive\n\n" {
		t.Errorf("keep-alive with nothing left out = %q", raw)
	}
}

// TestEventStreamEnds checks that a stream ends when its client leaves and
// when the server shuts down, leaving no goroutine behind.
func TestEventStreamEnds(t *testing.T) {
	b := uitest.New(t, churnDAG, manualDAG)
	s := ui.New(b, ui.Options{})
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
