package worker

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type chunk struct {
	off  int64
	data string
}

// recordChunks returns a send function for a logStream that records what
// it sends.
func recordChunks() (func(int64, []byte), func() []chunk) {
	var mu sync.Mutex
	var got []chunk
	return func(off int64, data []byte) {
			mu.Lock()
			got = append(got, chunk{off, string(data)})
			mu.Unlock()
		}, func() []chunk {
			mu.Lock()
			defer mu.Unlock()
			return append([]chunk(nil), got...)
		}
}

func TestLogStreamChunks(t *testing.T) {
	send, got := recordChunks()
	s := newLogStream(1<<30, send)
	big := strings.Repeat("x", logChunk+10)
	s.Write([]byte("ab"))
	s.Write([]byte(big))
	sent, written := s.Close()
	want := []chunk{{0, "ab" + big[:logChunk-2]}, {logChunk, big[logChunk-2:]}}
	if diff := cmp.Diff(want, got(), cmp.AllowUnexported(chunk{})); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if sent != int64(len(big)+2) || written != sent {
		t.Errorf("sent, written = %d, %d; want %d", sent, written, len(big)+2)
	}
}

func TestLogStreamFlushesOnTime(t *testing.T) {
	send, got := recordChunks()
	s := newLogStream(1<<20, send)
	s.Write([]byte("line\n"))
	deadline := time.Now().Add(2 * time.Second)
	for len(got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a short line was not sent without Close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := got()[0]; c.off != 0 || c.data != "line\n" {
		t.Errorf("chunk = %+v", c)
	}
	s.Close()
}

func TestLogStreamLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		limit  int64
		want   string
		bytes  int64
	}{
		{"under", []string{"abc\n"}, 10, "abc\n", 4},
		{"exactly", []string{"abcd\n", "efgh\n"}, 10, "abcd\nefgh\n", 10},
		{"cut mid-line", []string{"abcd\n", "efgh\n", "ijkl\n"}, 8,
			"abcd\nefg\n[kiln: log truncated: 7 bytes over the 8-byte limit were dropped]\n", 15},
		{"cut at a line end", []string{"abcd\n", "efgh\n"}, 5,
			"abcd\n[kiln: log truncated: 5 bytes over the 5-byte limit were dropped]\n", 10},
		{"no limit given", []string{"a"}, 0, "a", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send, got := recordChunks()
			s := newLogStream(tc.limit, send)
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			sent, written := s.Close()
			var all bytes.Buffer
			for _, c := range got() {
				if c.off != int64(all.Len()) {
					t.Fatalf("chunk at %d, want %d", c.off, all.Len())
				}
				all.WriteString(c.data)
			}
			if all.String() != tc.want {
				t.Errorf("log = %q, want %q", all.String(), tc.want)
			}
			if sent != int64(len(tc.want)) || written != tc.bytes {
				t.Errorf("sent, written = %d, %d; want %d, %d", sent, written, len(tc.want), tc.bytes)
			}
			// Writes after Close, from a runner that returned early, are
			// counted and dropped.
			chunks := len(got())
			s.Write([]byte("late"))
			if sent2, _ := s.Close(); sent2 != sent || len(got()) != chunks {
				t.Errorf("a write after Close was sent")
			}
		})
	}
}

func TestLogStreamNoteStartsALine(t *testing.T) {
	send, got := recordChunks()
	s := newLogStream(100, send)
	s.Write([]byte("partial"))
	s.note("kiln: something")
	s.Close()
	var all strings.Builder
	for _, c := range got() {
		all.WriteString(c.data)
	}
	if want := "partial\nkiln: something\n"; all.String() != want {
		t.Errorf("log = %q, want %q", all.String(), want)
	}
}

func TestParseOutputs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]any
		err  string
	}{
		{in: "", want: nil},
		{in: "\n\n  \n", want: nil},
		{in: "A=1\n", want: map[string]any{"A": "1"}},
		{in: "A=1\r\nB= spaced value \r\n", want: map[string]any{"A": "1", "B": " spaced value "}},
		{in: "A=1\nA=2", want: map[string]any{"A": "2"}},
		{in: "# comment\nURL=http://x/?a=b", want: map[string]any{"URL": "http://x/?a=b"}},
		{in: " K =v", want: map[string]any{"K": "v"}},
		{in: "# only comments", want: nil},
		{in: `{"a": {"b": [1, true, null]}}`, want: map[string]any{"a": map[string]any{"b": []any{1.0, true, nil}}}},
		{in: "  {}\n", want: map[string]any{}},
		{in: "A=1\nnope", err: `line 2: want KEY=VALUE or one JSON object, got "nope"`},
		{in: "=v", err: "line 1"},
		{in: "MY KEY=v", err: "line 1"},
		{in: `["a"]`, err: "line 1"},
		{in: `{"a": 1`, err: "not a valid JSON object"},
		{in: `{"a": 1} x`, err: "more than one JSON value"},
		{in: strings.Repeat("y", 100), err: `got "` + strings.Repeat("y", 60) + `..."`},
	} {
		got, err := parseOutputs([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseOutputs(%q) error = %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseOutputs(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseOutputs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestTaskEnv(t *testing.T) {
	got := taskEnv(
		[]string{"PATH=/bin", "HOME=/root", "KILN_DS=old"},
		map[string]string{"KILN_DS": "2026-01-01", "B": "2", "A": "1"},
		"KILN_OUTPUT=/tmp/o",
	)
	want := []string{"PATH=/bin", "HOME=/root", "KILN_DS=2026-01-01", "A=1", "B=2", "KILN_OUTPUT=/tmp/o"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestSlotsFIFO(t *testing.T) {
	s := newSlots(3)
	ctx := context.Background()
	if n, _ := s.acquire(ctx, 2); n != 2 {
		t.Fatalf("acquire(2) of 3 free = %d", n)
	}
	if n, _ := s.acquire(ctx, 5); n != 1 {
		t.Fatalf("acquire(5) of 1 free = %d", n)
	}
	// Two waiters: the first served first, each with what is free.
	got := make(chan string, 2)
	var wg sync.WaitGroup
	for _, name := range []string{"first", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.acquire(ctx, 2)
			if err != nil || n != 1 {
				t.Errorf("%s: acquire = %d, %v", name, n, err)
			}
			got <- name
		}()
		waitFor(t, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.waiters) == map[string]int{"first": 1, "second": 2}[name]
		})
	}
	s.release(1)
	if g := <-got; g != "first" {
		t.Errorf("%s served first", g)
	}
	s.release(1)
	wg.Wait()

	// A cancelled waiter leaves the queue and takes nothing.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, err := s.acquire(cctx, 1); done <- err }()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.waiters) == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled acquire succeeded")
	}
	s.release(4)
	if n := s.available(); n != 4 {
		t.Errorf("free = %d, want 4", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}
