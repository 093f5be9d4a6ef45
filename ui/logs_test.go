package ui_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/ui/uitest"
)

// putTries records tries 1..n of a task of run, the last one running.
func putTries(b *uitest.Backend, run *store.Run, task string, n int) {
	b.Commit(func(batch *store.Batch) {
		batch.PutTaskInstance(&store.TaskInstance{DAGID: run.DAGID, RunID: run.RunID, TaskID: task, State: store.TaskRunning, TryNumber: n, MaxTries: 4})
		for i := 1; i <= n; i++ {
			state := store.TaskFailed
			if i == n {
				state = store.TaskRunning
			}
			batch.PutTry(&store.Try{DAGID: run.DAGID, RunID: run.RunID, TaskID: task, Number: i, State: state})
		}
	})
}

func TestTaskLogs(t *testing.T) {
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	putTries(b, run, "train", 2)
	key := func(n int) wire.TryKey { return wire.TryKey{DAGID: "churn", RunID: run.RunID, TaskID: "train", Try: n} }
	b.AppendLog(key(1), "first try\n")
	b.AppendLog(key(2), "second try\n")
	url := srv.URL + "/api/v1/dags/churn/runs/" + run.RunID + "/tasks/"

	tests := []struct {
		name, path, body string
	}{
		{"latest try by default", "train/logs", "second try\n"},
		{"try 1", "train/logs?try=1", "first try\n"},
		{"follow=0 is text", "train/logs?try=2&follow=0", "second try\n"},
		{"from an offset", "train/logs?try=2&offset=7", "try\n"},
		{"from the end", "train/logs?try=2&offset=11", ""},
		{"past the end", "train/logs?try=2&offset=1000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "GET", url+tt.path, "")
			if r.status != 200 || string(r.body) != tt.body {
				t.Errorf("%d %q, want 200 %q", r.status, r.body, tt.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}

	// Range requests work, so a client can page through a big log.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"train/logs", nil)
	req.Header.Set("Range", "bytes=0-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(got) != "second" {
		t.Errorf("range: %d %q", resp.StatusCode, got)
	}

	// A try that has not logged yet has an empty log.
	putTries(b, run, "report", 1)
	if r := call(t, "GET", url+"report/logs", ""); r.status != 200 || len(r.body) != 0 {
		t.Errorf("no log file yet: %d %q, want 200 and nothing", r.status, r.body)
	}

	call(t, "GET", url+"train/logs?try=3", "").wantError(t, 404, "try 3")
	call(t, "GET", url+"train/logs?try=0", "").wantError(t, 400, "try")
	call(t, "GET", url+"train/logs?try=last", "").wantError(t, 400, "try")
	call(t, "GET", url+"train/logs?follow=maybe", "").wantError(t, 400, "follow")
	call(t, "GET", url+"train/logs?offset=-1", "").wantError(t, 400, "offset")
	call(t, "GET", url+"train/logs?offset=x", "").wantError(t, 400, "offset")
	call(t, "GET", url+"train/logs?follow=1&offset=-5", "").wantError(t, 400, "offset")
	call(t, "GET", url+"extract/logs", "").wantError(t, 404, "extract", "not been tried")
	call(t, "GET", url+"nope/logs", "").wantError(t, 404, `task "nope"`)
	call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/nope/tasks/train/logs", "").wantError(t, 404, "nope")
}

// syncBuffer is a bytes.Buffer safe to write and read from two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// follow starts following a log and returns the log as it arrives and a
// channel that receives the end of the stream.
func follow(t *testing.T, url string, header http.Header) (*syncBuffer, <-chan error, <-chan ui.LogEnd) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := &syncBuffer{}
	errc, endc := make(chan error, 1), make(chan ui.LogEnd, 1)
	go func() {
		defer resp.Body.Close()
		end, err := ui.DecodeLogStream(resp.Body, out)
		endc <- end
		errc <- err
	}()
	return out, errc, endc
}

// TestFollowLog follows a log with the fallback poll an hour away: the
// stream learns of new bytes from fsnotify, from before the log's folders
// exist, and of the try's end from the store's change feed.
func TestFollowLog(t *testing.T) {
	b := uitest.New(t, churnDAG, manualDAG)
	s := ui.New(b, ui.Options{})
	s.SetLogPoll(time.Hour)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	putTries(b, run, "train", 1)
	k := wire.TryKey{DAGID: "churn", RunID: run.RunID, TaskID: "train", Try: 1}
	url := srv.URL + "/api/v1/dags/churn/runs/" + run.RunID + "/tasks/train/logs?follow=1"

	// The file does not exist yet: the stream waits for it.
	out, errc, endc := follow(t, url, nil)
	b.AppendLog(k, "line 1\r\nline 2\n\xc3") // ends inside "é" (c3 a9)
	waitFor(t, "the first lines", func() bool { return out.String() == "line 1\nline 2\n" })
	b.AppendLog(k, "\xa9\rprogress 50%\rprogress 100%\n")
	waitFor(t, "the rest", func() bool { return strings.HasSuffix(out.String(), "100%\n") })
	// The log is whole, then the try's end is committed, as the scheduler
	// does it.
	b.AppendLog(k, "last words, no newline")
	b.Commit(func(batch *store.Batch) {
		batch.PutTry(&store.Try{DAGID: k.DAGID, RunID: k.RunID, TaskID: k.TaskID, Number: 1, State: store.TaskSuccess})
	})
	if err := <-errc; err != nil {
		t.Fatalf("stream: %v", err)
	}
	want := "line 1\nline 2\né\nprogress 50%\nprogress 100%\nlast words, no newline"
	if got := out.String(); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if end := <-endc; end != (ui.LogEnd{TryNumber: 1, State: store.TaskSuccess}) {
		t.Errorf("end = %+v", end)
	}

	// The raw events of a finished try: ids are byte offsets, the data
	// lines the log's lines, and the end event closes the stream.
	r := call(t, "GET", url, "")
	log := "line 1\r\nline 2\n\xc3\xa9\rprogress 50%\rprogress 100%\nlast words, no newline"
	wantRaw := "id: " + strconv.Itoa(len(log)) + "\ndata: line 1\ndata: line 2\ndata: é\ndata: progress 50%\ndata: progress 100%\ndata: last words, no newline\n\n" +
		"event: end\ndata: {\"try_number\":1,\"state\":\"success\"}\n\n"
	if string(r.body) != wantRaw {
		t.Errorf("raw stream = %q\nwant %q", r.body, wantRaw)
	}

	// Last-Event-ID resumes at a byte offset.
	out, errc, _ = follow(t, url, http.Header{"Last-Event-Id": {"15"}})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "é\nprogress 50%\nprogress 100%\nlast words, no newline" {
		t.Errorf("resumed log = %q", got)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Last-Event-ID", "x")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("bad Last-Event-ID: %v %v, want 400", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}

// TestShutdownEndsFollow checks that a followed log does not hold up a
// graceful shutdown.
func TestShutdownEndsFollow(t *testing.T) {
	b := uitest.New(t, churnDAG)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	putTries(b, run, "train", 1)
	k := wire.TryKey{DAGID: "churn", RunID: run.RunID, TaskID: "train", Try: 1}
	b.AppendLog(k, "working\n")

	s := ui.New(b, ui.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	out, errc, _ := follow(t, "http://"+ln.Addr().String()+"/api/v1/dags/churn/runs/"+run.RunID+"/tasks/train/logs?follow=1", nil)
	waitFor(t, "the log", func() bool { return out.String() == "working\n" })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := <-errc; !errors.Is(err, ui.ErrLogStreamCut) {
		t.Errorf("stream ended with %v, want ErrLogStreamCut", err)
	}
}

func TestStart(t *testing.T) {
	b := uitest.New(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := ui.New(b, ui.Options{Addr: busy.Addr().String()}).Start(t.Context()); err == nil {
		t.Error("Start on a busy address succeeded")
	}

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ui.New(b, ui.Options{Addr: addr}).Start(ctx) }()
	waitFor(t, "the server", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after its context was canceled")
	}
}
