package main_test

// Black-box tests of the real kiln binary: TestMain builds it once, and every
// test runs it as a user would, checking exit code, stdout and stderr.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
)

// kilnBin is the path of the binary built by TestMain.
var kilnBin string

// runTimeout bounds one run of the binary; every command under test works
// offline on a few small files.
const runTimeout = 30 * time.Second

// localTZ is the zone the binary runs in. It is far from every DAG's zone
// (UTC+05:45), so that output depending on the machine's zone instead of the
// DAG's shows up as a wrong offset.
const localTZ = "Asia/Kathmandu"

// testVersion is the version TestMain links into the binary, as a release
// build does (Makefile).
const testVersion = "v0.0.0-e2e"

// TestMain builds the binary, and lets the in-process tests of the
// commands that talk to a server run a real Kiln (internal/kilntest).
func TestMain(m *testing.M) {
	kilntest.Main(m, func(dir string) error {
		// Logins that commands save and read (kiln login) stay in the
		// test's own config folder, in process and in the binary.
		if err := os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config")); err != nil {
			return err
		}
		kilnBin = filepath.Join(dir, "kiln")
		if runtime.GOOS == "windows" {
			kilnBin += ".exe"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "build",
			"-ldflags", "-X github.com/kilnhq/kiln/internal/buildinfo.version="+testVersion, "-o", kilnBin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("go build of kiln failed: %v\n%s", err, out)
		}
		return nil
	})
}

// runKiln runs the kiln binary in the package folder (cmd/kiln), so that
// testdata/... and ../../examples/... paths work.
func runKiln(t *testing.T, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runKilnIn(t, "", args...)
}

// runKilnIn runs the kiln binary with dir as its working directory ("" for
// the package folder) and returns what it printed and its exit code.
func runKilnIn(t *testing.T, dir string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runKilnEnv(t, dir, nil, "", args...)
}

// runKilnEnv is runKilnIn with more environment variables (NAME=VALUE)
// and what to read on standard input.
func runKilnEnv(t *testing.T, dir string, env []string, stdin string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(kilnEnv(), "TZ="+localTZ), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kiln %s: did not finish within %v (stdout %q, stderr %q)", strings.Join(args, " "), runTimeout, out.String(), errOut.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		exitCode = 0
	case errors.As(err, &exit):
		exitCode = exit.ExitCode()
	default:
		t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), exitCode
}

// kilnEnv is the test process's environment without the variables that
// could point the CLI at a real server or change its time zone.
func kilnEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KILN_") || strings.HasPrefix(kv, "TZ=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// writeFiles creates files (path relative to root → content) under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readFixture returns the content of a file under testdata/.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
