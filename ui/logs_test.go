package ui_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// logsDAG logs as the log tests need: train fails its first try and
// succeeds its second, each saying which it is; report holds at its gate
// without a word; extract waits for report.
const logsDAG = `
id: logs
tasks:
  - id: train
    plugin: shell
    retries: 1
    retry_delay: 0s
    with: {command: 'if [ {{ .try_number }} = 1 ]; then echo first try; exit 1; fi; echo second try'}
  - id: report
    plugin: shell
    with: {command: "read gate < gates/report"}
  - id: extract
    plugin: shell
    depends_on: [report]
    with: {command: "true"}
`

func TestTaskLogs(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, logsDAG)
	k.Gate("report")
	run := trigger(t, k, "logs", "", nil)
	k.WaitTask("logs", run.RunID, "train", store.TaskSuccess)
	k.WaitTask("logs", run.RunID, "report", store.TaskRunning)
	url := srv.URL + "/api/v1/dags/logs/runs/" + run.RunID + "/tasks/"

	ran1 := ran("if [ 1 = 1 ]; then echo first try; exit 1; fi; echo second try")
	ran2 := ran("if [ 2 = 1 ]; then echo first try; exit 1; fi; echo second try")
	tests := []struct {
		name, path, body string
	}{
		{"latest try by default", "train/logs", ran2 + "second try\n"},
		{"try 1", "train/logs?try=1", ran1 + "first try\nkiln: exit status 1\n"},
		{"follow=0 is text", "train/logs?try=2&follow=0", ran2 + "second try\n"},
		{"from an offset", "train/logs?try=2&offset=" + strconv.Itoa(len(ran2)+7), "try\n"},
		{"from the end", "train/logs?try=2&offset=" + strconv.Itoa(len(ran2)+11), ""},
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
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", len(ran2), len(ran2)+5))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(got) != "second" {
		t.Errorf("range: %d %q", resp.StatusCode, got)
	}

	// A running try's log holds what it logged so far.
	k.WaitLog(wire.TryKey{DAGID: "logs", RunID: run.RunID, TaskID: "report", Try: 1}, "\n")
	if r := call(t, "GET", url+"report/logs", ""); r.status != 200 || string(r.body) != ran("read gate < gates/report") {
		t.Errorf("a running try: %d %q, want 200 and its command", r.status, r.body)
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
	call(t, "GET", url+"trian/logs", "").wantError(t, 404, `task "trian" not found`, `did you mean "train"?`)
	call(t, "GET", srv.URL+"/api/v1/dags/logs/runs/nope/tasks/train/logs", "").wantError(t, 404, "nope")
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

// followDAG's task logs nothing until the test opens the gate "start",
// then logs in three steps, with gates between them: a line ending in
// \r\n, a character cut in two, progress lines ending in \r, and last
// words without a newline.
// followCmd is followDAG's command as it runs, the first line of its log.
const followCmd = `read gate < gates/start; printf 'line 1\r\nline 2\n\303'; read gate < gates/more; printf '\251\rprogress 50%%\rprogress 100%%\n'; read gate < gates/last; printf 'last words, no newline'`

const followDAG = `
id: follow
tasks:
  - id: train
    plugin: shell
    with:
      command: "read gate < gates/start; printf 'line 1\\r\\nline 2\\n\\303'; read gate < gates/more; printf '\\251\\rprogress 50%%\\rprogress 100%%\\n'; read gate < gates/last; printf 'last words, no newline'"
`

// followWatching starts following a log as follow does, and returns once
// the stream has begun watching the log and found nothing to send: its
// first keep-alive (sent after its first look, with s's keep-alive
// shortened) is the barrier.
func followWatching(t *testing.T, url string) (*syncBuffer, <-chan error, <-chan ui.LogEnd) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{": keep-alive\n", "\n"} {
		if line, err := br.ReadString('\n'); err != nil || line != want {
			resp.Body.Close()
			t.Fatalf("the stream began with %q (%v), want %q", line, err, want)
		}
	}
	out := &syncBuffer{}
	errc, endc := make(chan error, 1), make(chan ui.LogEnd, 1)
	go func() {
		defer resp.Body.Close()
		end, err := ui.DecodeLogStream(br, out)
		endc <- end
		errc <- err
	}()
	return out, errc, endc
}

// TestFollowLog follows a log with the fallback poll an hour away: the
// stream learns of new bytes from fsnotify, and of the try's end from the
// store's change feed.
func TestFollowLog(t *testing.T) {
	t.Parallel()
	k := kilntest.New(t, churnDAG, manualDAG, followDAG)
	s := ui.New(k.Scheduler, ui.Options{})
	s.SetLogPoll(time.Hour)
	s.SetKeepAlive(time.Nanosecond) // a keep-alive after each look that sends nothing
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	start, more, last := k.Gate("start"), k.Gate("more"), k.Gate("last")
	run := trigger(t, k, "follow", "", nil)
	k.WaitTask("follow", run.RunID, "train", store.TaskRunning)
	key := wire.TryKey{DAGID: "follow", RunID: run.RunID, TaskID: "train", Try: 1}
	k.WaitLog(key, ran(followCmd))
	url := srv.URL + "/api/v1/dags/follow/runs/" + run.RunID + "/tasks/train/logs?follow=1"
	// Followed from after the command line, the streams find nothing
	// new to send at first.
	from := "&offset=" + strconv.Itoa(len(ran(followCmd)))
	out, errc, endc := followWatching(t, url+from)
	stampedOut, stampedErrc, _ := followWatching(t, url+"&timestamps=1"+from)
	start.Open()
	k.WaitFor("the first lines", func() bool { return out.String() == "line 1\nline 2\n" })
	more.Open()
	k.WaitFor("the rest", func() bool { return strings.HasSuffix(out.String(), "100%\n") })
	// The task writes its last words and exits; the worker sends the whole
	// log before it reports the try's end, which the scheduler commits.
	last.Open()
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
	// Followed with timestamps, each line that a newline starts has its
	// receive time, whichever piece of the stream it came in.
	if err := <-stampedErrc; err != nil {
		t.Fatalf("stamped stream: %v", err)
	}
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ `
	wantStamped := regexp.MustCompile("^" + stamp + "line 1\n" + stamp + "line 2\n" + stamp + "é\nprogress 50%\nprogress 100%\n" + stamp + "last words, no newline$")
	if got := stampedOut.String(); !wantStamped.MatchString(got) {
		t.Errorf("stamped log = %q", got)
	}

	// The raw events of a finished try: ids are byte offsets, the data
	// lines the log's lines, and the end event closes the stream.
	r := call(t, "GET", url, "")
	log := ran(followCmd) + "line 1\r\nline 2\n\xc3\xa9\rprogress 50%\rprogress 100%\nlast words, no newline"
	wantRaw := "id: " + strconv.Itoa(len(log)) + "\ndata: kiln: running: " + followCmd + "\ndata: line 1\ndata: line 2\ndata: é\ndata: progress 50%\ndata: progress 100%\ndata: last words, no newline\n\n" +
		"event: end\ndata: {\"try_number\":1,\"state\":\"success\"}\n\n"
	if string(r.body) != wantRaw {
		t.Errorf("raw stream = %q\nwant %q", r.body, wantRaw)
	}

	// Last-Event-ID resumes at a byte offset.
	out, errc, _ = follow(t, url, http.Header{"Last-Event-Id": {strconv.Itoa(len(ran(followCmd)) + 15)}})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "é\nprogress 50%\nprogress 100%\nlast words, no newline" {
		t.Errorf("resumed log = %q", got)
	}
	callHeader(t, "GET", url, "", http.Header{"Last-Event-ID": {"x"}}).wantError(t, 400, "Last-Event-ID", "byte offset")
}

// TestShutdownEndsFollow checks that a followed log does not hold up a
// graceful shutdown.
func TestShutdownEndsFollow(t *testing.T) {
	t.Parallel()
	k := kilntest.New(t, "id: working\ntasks: [{id: train, plugin: shell, with: {command: 'echo working; read gate < gates/hold'}}]")
	k.Gate("hold")
	run := trigger(t, k, "working", "", nil)

	s := ui.New(k.Scheduler, ui.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	k.WaitTask("working", run.RunID, "train", store.TaskRunning)
	out, errc, _ := follow(t, "http://"+ln.Addr().String()+"/api/v1/dags/working/runs/"+run.RunID+"/tasks/train/logs?follow=1", nil)
	k.WaitFor("the log", func() bool { return out.String() == ran("echo working; read gate < gates/hold")+"working\n" })

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
	t.Parallel()
	k := kilntest.Start(t, kilntest.Options{NoWorker: true})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := ui.New(k.Scheduler, ui.Options{Addr: busy.Addr().String()}).Start(t.Context()); err == nil {
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
	go func() { done <- ui.New(k.Scheduler, ui.Options{Addr: addr}).Start(ctx) }()
	k.WaitFor("the server", func() bool {
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
