package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/plugins/internal/proc"
	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

const (
	// chunkSize bounds one log message, and so the memory a task's output
	// takes on its way to the host however much it prints.
	chunkSize = 32 << 10
	// drainTimeout bounds reading the output pipe after the process group is
	// dead, in case a process that left the group still holds it open.
	drainTimeout = 2 * time.Second
	// shutdownGrace is how long Shutdown waits for cancelled tasks to end
	// before it kills their groups outright; go-plugin's host kills the
	// plugin 2 s after asking it to exit.
	shutdownGrace = time.Second
)

// server implements the Stage service for shell commands.
type server struct {
	stagepb.UnimplementedStageServer

	stop     context.Context // cancelled by Shutdown
	stopNow  context.CancelFunc
	mu       sync.Mutex
	groups   map[int]struct{} // process groups of running tasks
	shutdown bool
	wg       sync.WaitGroup // running tasks
}

func newServer() *server {
	ctx, cancel := context.WithCancel(context.Background())
	return &server{stop: ctx, stopNow: cancel, groups: make(map[int]struct{})}
}

func (s *server) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.Info, error) {
	return &stagepb.Info{Name: Name, Version: Version, Schema: Schema, Sensor: false}, nil
}

func (s *server) Run(req *stagepb.RunRequest, stream stagepb.Stage_RunServer) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return status.Error(codes.Unavailable, "shell plugin is shutting down")
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	res := s.run(stream.Context(), req, stream)
	return stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Result{Result: res}})
}

func failed(format string, args ...any) *stagepb.Result {
	return &stagepb.Result{Error: fmt.Sprintf(format, args...)}
}

// run runs the task's command to its end and returns its result. Log chunks
// are sent from one goroutine while run waits; the caller sends the result
// after run returns, so sends never overlap.
func (s *server) run(ctx context.Context, req *stagepb.RunRequest, stream stagepb.Stage_RunServer) *stagepb.Result {
	p, err := decodeParams(req.GetWith())
	if err != nil {
		return failed("invalid shell parameters: %v", err)
	}
	env, err := p.env(req.GetEnv())
	if err != nil {
		return failed("invalid shell parameters: %v", err)
	}

	dir := p.dir(req.GetWorkDir())
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return failed("workdir: %v", err)
		} else if !fi.IsDir() {
			return failed("workdir %s is not a directory", dir)
		}
	}

	// The command first, as Airflow's BashOperator logs it: what ran is
	// then in the log, rendered (docs/dag-format.md#shell).
	if err := stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: runningLine(p.Command)}}); err != nil {
		return failed("sending the log: %v", err)
	}

	// One pipe for stdout and stderr keeps their order. Both ends are
	// *os.File, so os/exec starts no copying goroutines and Wait returns
	// when the shell exits, whoever else still holds the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		return failed("creating output pipe: %v", err)
	}
	defer pr.Close()
	cmd := exec.Command(p.Shell, "-c", p.Command)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return failed("starting %s: %v", p.Shell, err)
	}
	pgid := cmd.Process.Pid
	if !s.track(pgid) {
		// Shutdown began between Run's check and now.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	defer s.untrack(pgid)

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sendLog(stream, pr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var res *stagepb.Result
	select {
	case err = <-exited:
		res = exitResult(cmd, err)
	case <-ctx.Done():
		res = &stagepb.Result{Error: fmt.Sprintf("cancelled (%v): %s", context.Cause(ctx), proc.StopGroup(pgid, exited))}
	case <-s.stop.Done():
		res = &stagepb.Result{Error: "plugin shut down: " + proc.StopGroup(pgid, exited)}
	}

	// The task is over when its shell exits: what it left running in its
	// group would otherwise outlive it, unseen.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(drainTimeout):
		pr.Close() // unblocks the reader
		<-copied
	}
	return res
}

// runningLine is the first line of a task's log: "kiln: running: " and
// the command, each further line of a command of several prefixed
// "kiln: > ".
func runningLine(command string) []byte {
	command = strings.TrimRight(command, "\n")
	return []byte("kiln: running: " + strings.ReplaceAll(command, "\n", "\nkiln: > ") + "\n")
}

func exitResult(cmd *exec.Cmd, err error) *stagepb.Result {
	st := cmd.ProcessState
	if st == nil {
		return failed("waiting for %s: %v", cmd.Path, err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return failed("killed by signal %v", ws.Signal())
	}
	code := int32(st.ExitCode())
	if code != 0 {
		return &stagepb.Result{ExitCode: &code, Error: fmt.Sprintf("exit status %d", code)}
	}
	return &stagepb.Result{Success: true, ExitCode: &code}
}

// sendLog streams r to the host in chunks until EOF. If the stream breaks
// (the host cancelled), it keeps reading so the task never blocks on a full
// pipe before it is killed.
func sendLog(stream stagepb.Stage_RunServer, r io.Reader) {
	broken := false
	for {
		// A fresh buffer each time: gRPC may still hold the last message.
		buf := make([]byte, chunkSize)
		n, err := r.Read(buf)
		if n > 0 && !broken {
			ev := &stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: buf[:n]}}
			broken = stream.Send(ev) != nil
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !broken {
				msg := fmt.Sprintf("\nkiln: reading task output: %v\n", err)
				_ = stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: []byte(msg)}})
			}
			return
		}
	}
}

func (s *server) track(pgid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[pgid] = struct{}{}
	return !s.shutdown
}

func (s *server) untrack(pgid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, pgid)
}

// Shutdown cancels every running task, waits up to shutdownGrace for them to
// end, then kills the process groups still there.
func (s *server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.stopNow()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(shutdownGrace):
	}
	s.mu.Lock()
	for pgid := range s.groups {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	s.mu.Unlock()
}
