package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/ui"
)

// TestAPIAnswers503UntilStarted: until the scheduler has loaded its DAGs
// and recovered its runs (a server starting, a standby taking over),
// every /api/v1 route answers 503 with Retry-After rather than as if no
// DAG existed; once it has, the same request lists the DAG.
func TestAPIAnswers503UntilStarted(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dags, "manual.yaml"), []byte(manualDAG), 0o644); err != nil {
		t.Fatal(err)
	}
	_, st, nc := kilntest.Parts(t, dir)
	sched, err := scheduler.New(scheduler.Config{
		Store: st, NATS: nc, DataDir: dir,
		Folder: dag.NewFolder(dag.Options{Plugins: plugins.Builtin()}, dags),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.New(sched, ui.Options{}).Handler())
	t.Cleanup(srv.Close)

	r := call(t, http.MethodGet, srv.URL+"/api/v1/dags", "")
	r.wantError(t, http.StatusServiceUnavailable, "the scheduler is starting")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if r := call(t, http.MethodGet, srv.URL+"/healthz", ""); !strings.Contains(string(r.body), `"status"`) {
		t.Errorf("/healthz while starting: %d %s", r.status, r.body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { _ = sched.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		running.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !sched.Started() {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not start in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r = call(t, http.MethodGet, srv.URL+"/api/v1/dags", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"dag_id":"adhoc"`) {
		t.Errorf("/api/v1/dags once started: %d %s", r.status, r.body)
	}
}
