package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/tmpfs"
)

// floodDAG's tasks print far more log than the test's disk holds while
// the marker file (%s) exists, and a word once it is gone.
const floodDAG = `id: flood
defaults: {plugin: shell, retries: 3, retry_delay: 1s}
tasks:
  - {id: a, with: {command: 'if [ -e "%[1]s" ]; then head -c 30000000 /dev/zero | base64; else echo quiet; fi'}}
  - {id: b, with: {command: 'if [ -e "%[1]s" ]; then head -c 30000000 /dev/zero | base64; else echo quiet; fi'}}
  - {id: c, with: {command: 'if [ -e "%[1]s" ]; then head -c 30000000 /dev/zero | base64; else echo quiet; fi'}}
  - {id: d, with: {command: 'if [ -e "%[1]s" ]; then head -c 30000000 /dev/zero | base64; else echo quiet; fi'}}
`

const smallDAG = `id: small
tasks: [{id: hi, plugin: shell, with: {command: 'echo hi'}}]
`

// trigger starts a run through the CLI and returns its id.
func trigger(t *testing.T, s *standalone, dag string, wait bool) string {
	t.Helper()
	args := []string{"trigger", dag, "--json"}
	if wait {
		args = append(args, "--wait")
	}
	stdout, stderr, code := s.kiln(t, args...)
	if code != 0 {
		t.Fatalf("kiln trigger %s: exit code %d, stderr %q", dag, code, stderr)
	}
	var r struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("kiln trigger: %v\n%s", err, stdout)
	}
	return r.RunID
}

// TestFullDiskStopsStandalone runs kiln standalone on a small disk of
// its own and fills it with a DAG's logs. The process must stop by
// itself, soon, exiting 1 with a message that names ENOSPC and the data
// folder; once the disk is grown and kiln started again, the runs it had
// committed are all there and the one in flight finishes
// (docs/operations.md#damaged-or-full-data-folder).
func TestFullDiskStopsStandalone(t *testing.T) {
	disk := tmpfs.Mount(t, 48<<20)
	data := filepath.Join(disk, "data")
	root := t.TempDir()
	dags, marker := filepath.Join(root, "dags"), filepath.Join(root, "flood-on")
	writeFiles(t, root, map[string]string{
		"dags/small.yaml": smallDAG,
		"dags/flood.yaml": fmt.Sprintf(floodDAG, marker),
		"flood-on":        "",
	})
	args := []string{"--heartbeat-timeout", "2s"}

	s := startStandalone(t, dags, data, args...)
	small := trigger(t, s, "small", true)
	flood := trigger(t, s, "flood", false)
	const bound = 60 * time.Second
	if code := s.wait(t, bound); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	out := s.out.String()
	msg := out[strings.LastIndex(out, "kiln: "):]
	for _, want := range []string{"the disk of the data folder " + data + " is full (ENOSPC)", "no space left on device", "start kiln again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the last message does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
		t.Errorf("the output shows a Go panic:\n%s", out)
	}

	// Make room, stop flooding, start again: everything committed is
	// there and the run in flight goes on to the end.
	tmpfs.Resize(t, disk, 256<<20)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	s = startStandalone(t, dags, data, args...)
	if got := showRun(t, s, "small", small).State; got != "success" {
		t.Errorf("run %s of small after the restart: %s, want success", small, got)
	}
	if r := waitRunState(t, s, "flood", flood, ended); r.State != "success" {
		t.Fatalf("run %s of flood after the restart: %s, want success", flood, r.State)
	}
}
