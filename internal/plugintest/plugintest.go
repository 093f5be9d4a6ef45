// Package plugintest is what the tests of kiln's plugins share: a TestMain
// that builds the binaries the tests start and lets the test binary serve a
// plugin itself, a plugins host over those processes, a one-call run of a
// stage in this process, a task log safe to read while the task runs, and a
// poll with a deadline.
package plugintest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnhq/kiln/plugins/host"
)

// ServeEnv, set in a test binary's environment, names the plugin Main is to
// serve instead of running the tests; SelfCommand sets it.
const ServeEnv = "KILN_TEST_SERVE_PLUGIN"

// Main is a TestMain for tests that start plugin processes. When ServeEnv
// names one of serve, the test binary serves that plugin. Otherwise Main
// calls build, when not nil, with a temporary directory to build binaries
// into, runs the tests, removes the directory and exits.
func Main(m *testing.M, serve map[string]func(), build func(dir string) error) {
	if name := os.Getenv(ServeEnv); name != "" {
		main, ok := serve[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown %s %q\n", ServeEnv, name)
			os.Exit(2)
		}
		main()
		return
	}
	os.Exit(Run(m, build))
}

// Run is Main without the serving and the exit: it calls build, when not
// nil, with a temporary directory, runs the tests, removes the directory
// and returns the exit code, for a TestMain that has more to do.
func Run(m *testing.M, build func(dir string) error) int {
	if build == nil {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kiln-plugintest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Build builds the Go package pkg (an import path, or "." for the test's
// own) into dir as name, and returns the binary's path.
func Build(dir, name, pkg string) (string, error) {
	exe := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", exe, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return exe, nil
}

// SelfCommand returns a command that starts this test binary to serve the
// plugin name, as Main serves it.
func SelfCommand(name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	// A race in the plugin process crashes it, and so fails the test; and
	// the race detector does not hold its exit up for a second.
	cmd.Env = append(os.Environ(), ServeEnv+"="+name, "GORACE=halt_on_error=1 atexit_sleep_ms=0")
	return cmd
}

// NewHost returns a plugins host, closed when the test ends, that starts
// plugins with command; a nil command starts each as SelfCommand does.
func NewHost(t testing.TB, command func(name string) (*exec.Cmd, error)) *host.Host {
	t.Helper()
	if command == nil {
		command = func(name string) (*exec.Cmd, error) { return SelfCommand(name), nil }
	}
	h := host.New(host.Config{Command: command})
	t.Cleanup(func() { h.Close() })
	return h
}
