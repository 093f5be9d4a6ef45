package scheduler_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/diskfull"
	"github.com/kilnhq/kiln/internal/tmpfs"
)

// TestLogOnFullDiskStopsScheduler fills the disk of the scheduler's data
// folder and runs a task that prints: the chunk of its log that finds no
// room stops the scheduler with an error saying so, instead of being
// retried for ever (docs/operations.md#damaged-or-full-data-folder).
func TestLogOnFullDiskStopsScheduler(t *testing.T) {
	data := tmpfs.Mount(t, 1<<20)
	runErr := make(chan error, 1)
	e := start(t, map[string]string{
		"chatty": "id: chatty\ntasks: [{id: say, plugin: shell, with: {command: 'echo hello'}}]\n",
	}, options{workers: 1, dataDir: data, runErr: runErr})
	tmpfs.Fill(t, filepath.Join(data, "ballast"), -1)
	e.trigger("chatty", nil)
	select {
	case err := <-runErr:
		if !diskfull.Is(err) {
			t.Fatalf("scheduler stopped with %v, want a full disk (ENOSPC)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduler goes on with its logs' disk full")
	}
}
