package plugintest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// RunStage runs one try of stage in this process, as a worker would, with
// task's other fields as given: its With is with as JSON, its Log a buffer,
// and, unless task.Env sets one, its KILN_OUTPUT a fresh file. It returns
// the log, the KEY=VALUE lines of the output file and the stage's error.
func RunStage(ctx context.Context, t testing.TB, stage sdk.Stage, with any, task *sdk.Task) (log string, outputs map[string]string, err error) {
	t.Helper()
	raw, err := json.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "output")
	var buf bytes.Buffer
	task.With = raw
	task.Env = append([]string{"KILN_OUTPUT=" + out}, task.Env...) // the last one counts
	task.Log = &buf
	err = stage.Run(ctx, task)
	return buf.String(), ReadOutputs(t, out), err
}

// ReadOutputs reads the KEY=VALUE lines of a task's output file; none when
// there is no file.
func ReadOutputs(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Fatalf("output line %q is not KEY=VALUE", sc.Text())
		}
		got[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// LogBuffer is a task log that tests may read while the task runs.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the log.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor polls cond until it holds, and fails the test when it does not
// within the given time.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
