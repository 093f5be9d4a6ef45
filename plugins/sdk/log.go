package sdk

import (
	"bytes"
	"errors"
	"sync"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// maxChunk bounds one log message on the stream; larger writes are split.
const maxChunk = 32 << 10

// errLogEnded is what a write to a task's log gets once its Run returned.
var errLogEnded = errors.New("sdk: write to the log of a task whose Run has returned")

// logWriter is a task's Task.Log: each Write is sent to the host as it
// happens, as one or more log events, and then the result ends the stream.
// The lock keeps the stream's sends one at a time, as gRPC requires, and a
// Write's chunks together; a host slow to read holds writers back.
type logWriter struct {
	mu     sync.Mutex
	stream stagepb.Stage_RunServer
	ended  bool // the result was sent, or the process is about to crash
	broken bool // a send failed: the host is gone and the rest is dropped
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return 0, errLogEnded
	}
	n := len(p)
	for len(p) > 0 && !w.broken {
		c := p[:min(len(p), maxChunk)]
		p = p[len(c):]
		// A copy: the caller may reuse p, and gRPC may hold the message
		// after Send returns.
		ev := &stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: bytes.Clone(c)}}
		// A failed send means the call is over (the host cancelled it or
		// died): Run's ctx is cancelled too, and it is not for a log write
		// to fail the task, or a command copying its output here.
		w.broken = w.stream.Send(ev) != nil
	}
	return n, nil
}

// end sends res, if not nil, as the stream's last event and fails every
// later Write. It waits for a Write in progress.
func (w *logWriter) end(res *stagepb.Result) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	if res == nil || w.broken {
		return nil
	}
	return w.stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Result{Result: res}})
}
