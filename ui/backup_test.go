package ui_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// TestBackup checks that GET /api/v1/backup answers a sound copy of the
// running server's store, with the run just triggered, and says its
// length.
func TestBackup(t *testing.T) {
	b, srv := newAPI(t)
	run, err := b.Trigger(t.Context(), "churn", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp := call(t, http.MethodGet, srv.URL+"/api/v1/backup", "")
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET /api/v1/backup: %d %s, want 200 application/octet-stream", resp.status, resp.header.Get("Content-Type"))
	}
	if n, err := strconv.Atoi(resp.header.Get("Content-Length")); err != nil || n != len(resp.body) {
		t.Errorf("Content-Length %q for %d bytes", resp.header.Get("Content-Length"), len(resp.body))
	}
	path := filepath.Join(t.TempDir(), "kiln.db")
	if err := os.WriteFile(path, resp.body, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := store.Check(context.Background(), path)
	if err != nil || len(r.Problems) > 0 {
		t.Fatalf("Check of the copy: %v, problems %q", err, r.Problems)
	}
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GetRun("churn", run.RunID); err != nil {
		t.Errorf("the copy has no run %s: %v", run.RunID, err)
	}
}
