package main_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// standalone is a `kiln standalone` started by startStandalone, on
// loopback ports it chose itself.
type standalone struct {
	// URL is the API's base URL.
	URL    string
	cmd    *exec.Cmd
	out    syncBuffer // stdout and stderr
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// syncBuffer is a bytes.Buffer that the process writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// apiURL finds the API's address in the "kiln is up" log line.
var apiURL = regexp.MustCompile(`msg="kiln is up" api=(http://\S+)`)

// startStandalone starts `kiln standalone --dags dags --data data` with
// args more, and waits until it answers /healthz. It is killed when the
// test ends if still running; its output is logged if the test failed.
func startStandalone(t *testing.T, dags, data string, args ...string) *standalone {
	t.Helper()
	return startStandaloneIn(t, "", dags, data, args...)
}

// startStandaloneIn is startStandalone with dir as the working directory
// ("" for the package folder), which is also where its worker runs tasks.
func startStandaloneIn(t *testing.T, dir, dags, data string, args ...string) *standalone {
	t.Helper()
	s := &standalone{exited: make(chan struct{})}
	s.cmd = exec.Command(kilnBin, append([]string{"standalone", "--dags", dags, "--data", data,
		"--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = kilnEnv()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("kiln standalone output:\n%s", s.out.String())
		}
	})
	deadline := time.Now().Add(runTimeout)
	for {
		select {
		case <-s.exited:
			t.Fatalf("kiln standalone exited while starting (%v):\n%s", s.err, s.out.String())
		default:
		}
		if m := apiURL.FindStringSubmatch(s.out.String()); m != nil && s.healthy() {
			s.URL = m[1]
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln standalone not healthy within %v:\n%s", runTimeout, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthy reports whether /healthz answers 200.
func (s *standalone) healthy() bool {
	m := apiURL.FindStringSubmatch(s.out.String())
	if m == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1]+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// wait waits up to timeout for the process to exit by itself and returns
// its exit code; it fails the test if it did not.
func (s *standalone) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		t.Fatalf("kiln standalone still running after %v", timeout)
	}
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		return exit.ExitCode()
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return 0
}

// kiln runs the CLI against the server.
func (s *standalone) kiln(t *testing.T, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runKiln(t, append(args, "--server", s.URL)...)
}

// exampleDAGs copies the named files of examples/dags into a new DAGs
// folder, and returns it.
func exampleDAGs(t *testing.T, names ...string) string {
	t.Helper()
	dags := t.TempDir()
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join("../../examples/dags", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dags, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dags
}
