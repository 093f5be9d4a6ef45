package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// fakeStream records what a Run sends.
type fakeStream struct {
	grpc.ServerStream // nil: only Send and Context are used

	mu     sync.Mutex
	events []*stagepb.RunEvent
	fail   error // returned by every Send once set
}

func (s *fakeStream) Context() context.Context { return context.Background() }

func (s *fakeStream) Send(ev *stagepb.RunEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *fakeStream) logChunks() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, ev := range s.events {
		if l, ok := ev.Event.(*stagepb.RunEvent_Log); ok {
			out = append(out, l.Log)
		}
	}
	return out
}

func TestLogWriterChunks(t *testing.T) {
	s := &fakeStream{}
	w := &logWriter{stream: s}
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*maxChunk+100)/16)
	for _, p := range [][]byte{[]byte("small\n"), nil, big} {
		if n, err := w.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	var sizes []int
	for _, c := range s.logChunks() {
		sizes = append(sizes, len(c))
	}
	want := []int{6, maxChunk, maxChunk, maxChunk, len(big) - 3*maxChunk}
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("chunk sizes = %v, want %v", sizes, want)
	}
	if got := bytes.Join(s.logChunks(), nil); !bytes.Equal(got, append([]byte("small\n"), big...)) {
		t.Error("chunks do not add up to what was written")
	}

	// The writer copies: the caller may reuse its buffer.
	buf := []byte("first\n")
	w.Write(buf)
	copy(buf, "XXXXX\n")
	if chunks := s.logChunks(); string(chunks[len(chunks)-1]) != "first\n" {
		t.Errorf("last chunk = %q, want %q", chunks[len(chunks)-1], "first\n")
	}

	if err := w.end(&stagepb.Result{Success: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late\n")); !errors.Is(err, errLogEnded) {
		t.Errorf("Write after end: %v, want errLogEnded", err)
	}
	if last := s.events[len(s.events)-1]; !last.GetResult().GetSuccess() {
		t.Errorf("last event = %v, want the result", last)
	}
}

// TestLogWriterConcurrent: concurrent writers' writes are never mixed, even
// when they are split into several chunks.
func TestLogWriterConcurrent(t *testing.T) {
	s := &fakeStream{}
	w := &logWriter{stream: s}
	const writers, writes = 8, 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			block := bytes.Repeat([]byte{byte('a' + i)}, maxChunk+maxChunk/2)
			for range writes {
				w.Write(block)
			}
		})
	}
	wg.Wait()
	chunks := s.logChunks()
	if len(chunks) != 2*writers*writes {
		t.Fatalf("%d chunks, want %d", len(chunks), 2*writers*writes)
	}
	for i := 0; i < len(chunks); i += 2 {
		first, second := chunks[i], chunks[i+1]
		if len(first) != maxChunk || len(second) != maxChunk/2 || first[0] != second[0] {
			t.Fatalf("chunks %d and %d are not the two halves of one write: %d×%q, %d×%q",
				i, i+1, len(first), first[0], len(second), second[0])
		}
	}
}

// TestLogWriterBroken: once the host is gone, writes are dropped without
// an error, so a command copying its output to the log is not stopped by
// it before the task's ctx kills it.
func TestLogWriterBroken(t *testing.T) {
	s := &fakeStream{fail: errors.New("stream gone")}
	w := &logWriter{stream: s}
	if n, err := w.Write([]byte("lost\n")); n != 5 || err != nil {
		t.Errorf("Write on a broken stream = %d, %v; want 5, nil", n, err)
	}
	if err := w.end(&stagepb.Result{Success: true}); err != nil {
		t.Errorf("end on a broken stream: %v", err)
	}
}

func TestResult(t *testing.T) {
	code := func(c int32) *int32 { return &c }
	tests := []struct {
		name string
		err  error
		want *stagepb.Result
	}{
		{"success", nil, &stagepb.Result{Success: true}},
		{"failure", errors.New("it broke"), &stagepb.Result{Error: "it broke"}},
		{"not yet", ErrNotYet, &stagepb.Result{Error: "condition not met yet", PokeAgain: true}},
		{"not yet wrapped", fmt.Errorf("no file at /x: %w", ErrNotYet),
			&stagepb.Result{Error: "no file at /x: condition not met yet", PokeAgain: true}},
		{"exit code", ExitCode(3, nil), &stagepb.Result{Error: "exit status 3", ExitCode: code(3)}},
		{"exit code with a message", ExitCode(4, errors.New("lint failed")),
			&stagepb.Result{Error: "lint failed", ExitCode: code(4)}},
		{"wrapped exit code", fmt.Errorf("step 2: %w", ExitCode(5, nil)),
			&stagepb.Result{Error: "step 2: exit status 5", ExitCode: code(5)}},
		{"exit code 0 is a failure", ExitCode(0, nil), &stagepb.Result{Error: "exit status 0", ExitCode: code(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := result(tt.err)
			if got.String() != tt.want.String() {
				t.Errorf("result(%v) = {%v}, want {%v}", tt.err, got, tt.want)
			}
		})
	}
	if err := fmt.Errorf("x: %w", ExitCode(1, ErrNotYet)); !errors.Is(err, ErrNotYet) {
		t.Error("ExitCode does not wrap its error")
	}
}

func TestInfoValidate(t *testing.T) {
	tests := []struct {
		info    Info
		wantErr string
	}{
		{Info{Name: "x"}, ""},
		{Info{Name: "x", Schema: []byte(`{"type":"object","required":["a"]}`)}, ""},
		{Info{}, "Name is empty"},
		{Info{Name: "x", Schema: []byte(`{"type":`)}, "not valid JSON"},
		{Info{Name: "x", Schema: []byte(`true`)}, "not a JSON object"},
		{Info{Name: "x", Schema: []byte{}}, "not valid JSON"},
	}
	for _, tt := range tests {
		err := tt.info.validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v.validate() = %v, want %q", tt.info, err, tt.wantErr)
		}
	}
}
