package sdk

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

const (
	// shutdownGrace is how long Shutdown waits for cancelled tasks to
	// return; go-plugin's host kills the plugin 2 s after asking it to exit.
	shutdownGrace = time.Second
	// panicFlush is how long a panicking Run waits before it crashes the
	// process, so that gRPC writes out the log sent so far: Send only
	// queues a message, and nothing says when it is on the wire.
	panicFlush = 200 * time.Millisecond
)

// NewServer returns s as the Stage service, for tests (through go-plugin's
// test helpers or a real host) and for plugins that kiln serves itself.
// Main serves it.
//
// If s's Info is not valid (no Name, or a Schema that is not a JSON
// object), Describe fails; Main refuses to start instead.
func NewServer(s Stage) stagepb.StageServer {
	ctx, cancel := context.WithCancel(context.Background())
	info := s.Info()
	return &server{stage: s, info: info, infoErr: info.validate(), stop: ctx, stopNow: cancel}
}

// server adapts a Stage to stagepb.StageServer.
type server struct {
	stagepb.UnimplementedStageServer

	stage   Stage
	info    Info
	infoErr error

	stop    context.Context // cancelled by Shutdown
	stopNow context.CancelFunc

	mu       sync.Mutex
	shutdown bool
	running  sync.WaitGroup
}

func (s *server) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.Info, error) {
	if s.infoErr != nil {
		return nil, status.Error(codes.FailedPrecondition, s.infoErr.Error())
	}
	return &stagepb.Info{
		Name:    s.info.Name,
		Version: s.info.Version,
		Schema:  s.info.schema(),
		Sensor:  s.info.Sensor,
	}, nil
}

func (s *server) Run(req *stagepb.RunRequest, stream stagepb.Stage_RunServer) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return status.Errorf(codes.Unavailable, "plugin %s is shutting down", s.info.Name)
	}
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()

	// The call's context ends when the host cancels the try, or gives up
	// on it; Shutdown ends every task's, with ErrShutdown as the cause.
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	defer context.AfterFunc(s.stop, func() { cancel(ErrShutdown) })()

	log := &logWriter{stream: stream}
	t := &Task{
		With:    req.GetWith(),
		Env:     req.GetEnv(),
		TaskEnv: req.GetTaskEnv(),
		WorkDir: req.GetWorkDir(),
		Try:     req.GetTryKey(),
		Log:     log,
	}
	err := s.run(ctx, t, log)
	res := result(err)
	res.Facts = t.takeFacts()
	return log.end(res)
}

// run calls the stage's Run. A panic is not recovered for good: it is
// raised again, to crash the process, once the log has had time to go out.
// The host then reports the crash, with the panic from the process's
// stderr, for every try the process was running, and relaunches it.
func (s *server) run(ctx context.Context, t *Task, log *logWriter) error {
	defer func() {
		if v := recover(); v != nil {
			_ = log.end(nil) // waits out a Write in progress, stops the rest
			time.Sleep(panicFlush)
			panic(v)
		}
	}()
	return s.stage.Run(ctx, t)
}

// result is the Result event for Run's error.
func result(err error) *stagepb.Result {
	if err == nil {
		return &stagepb.Result{Success: true}
	}
	res := &stagepb.Result{Error: err.Error(), PokeAgain: errors.Is(err, ErrNotYet)}
	var ee *exitError
	if errors.As(err, &ee) {
		code := int32(ee.code)
		res.ExitCode = &code
	}
	return res
}

// Shutdown cancels every running task and waits a little for their Runs to
// return. serve.Serve calls it before the process exits.
func (s *server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.stopNow()

	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
	}
}
