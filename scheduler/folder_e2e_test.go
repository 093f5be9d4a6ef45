package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/store"
)

// TestE2EBadFilesDoNotStopReloads drops into the DAGs folder of a running
// scheduler the files that used to freeze or exhaust it: a FIFO, a link
// to /dev/zero, and YAML nested 100,000 levels deep. Each is an import
// error, later reloads go on, the health stays good and the other DAGs
// still run.
func TestE2EBadFilesDoNotStopReloads(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	good := "tasks: [{id: a, plugin: shell, with: {command: 'echo good'}}]\n"
	e := start(t, map[string]string{"good": good}, options{workers: 1, metrics: reg})
	if err := syscall.Mkfifo(filepath.Join(e.dagsDir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(e.dagsDir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	e.writeDAG("deep", "tasks: "+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000))
	e.waitFor("three import errors", 20*time.Second, func() bool { return len(e.s.ImportErrors()) == 3 })
	var files []string
	for _, ie := range e.s.ImportErrors() {
		files = append(files, filepath.Base(ie.File))
	}
	if got := strings.Join(files, " "); got != "deep.yaml fifo.yaml zero.yaml" {
		t.Errorf("import errors of %s, want deep.yaml fifo.yaml zero.yaml", got)
	}

	// Reloads go on: a new DAG appears, and the metric moves.
	last := scrape(t, reg)["kiln_dag_folder_last_load_timestamp_seconds"]
	e.writeDAG("later", good)
	e.waitFor("the DAG added after them", 20*time.Second, func() bool { _, ok := e.s.DAG("later"); return ok })
	e.waitFor("the last load time to move", 20*time.Second, func() bool {
		return scrape(t, reg)["kiln_dag_folder_last_load_timestamp_seconds"] > last
	})
	if err := e.s.Health(); err != nil {
		t.Errorf("Health = %v, want ok: bad files are import errors", err)
	}
	for _, id := range []string{"good", "later"} {
		if r := e.waitRun(e.trigger(id, nil), 20*time.Second); r.State != store.RunSuccess {
			t.Errorf("run of %s: %s, want success", id, r.State)
		}
	}
}

// TestE2EFolderHealth: a DAGs folder that cannot be read makes Health fail
// with the reason, and the load errors metric count; once it is back,
// Health is good again.
func TestE2EFolderHealth(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := start(t, map[string]string{"good": "tasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n"}, options{metrics: reg})
	e.waitFor("the scheduler to be healthy", 20*time.Second, func() bool { return e.s.Health() == nil })
	moved := filepath.Join(e.dir, "moved")
	if err := os.Rename(e.dagsDir, moved); err != nil {
		t.Fatal(err)
	}
	e.waitFor("Health to report the failing reloads", 20*time.Second, func() bool {
		err := e.s.Health()
		return err != nil && strings.HasPrefix(err.Error(), "DAGs folder: the last reload failed: loading DAGs from "+e.dagsDir)
	})
	if n := scrape(t, reg)["kiln_dag_folder_load_errors_total"]; n < 1 {
		t.Errorf("kiln_dag_folder_load_errors_total = %v, want at least 1", n)
	}
	if err := os.Rename(moved, e.dagsDir); err != nil {
		t.Fatal(err)
	}
	e.waitFor("Health to be good again", 20*time.Second, func() bool { return e.s.Health() == nil })
	if _, ok := e.s.DAG("good"); !ok {
		t.Error("DAG good is gone")
	}
}
