package ui_test

import (
	"slices"
	"testing"

	"github.com/kilnhq/kiln/ui"
)

// TestListPaging: the lists held in memory take limit and offset like the
// run list, and tell their whole length in X-Total-Count.
func TestListPaging(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t) // two DAGs: churn and adhoc
	tests := []struct {
		query   string
		status  int
		wantIDs []string
	}{
		{"", 200, []string{"adhoc", "churn"}},
		{"?limit=1", 200, []string{"adhoc"}},
		{"?limit=1&offset=1", 200, []string{"churn"}},
		{"?offset=5", 200, []string{}},
		{"?limit=0", 400, nil},
		{"?offset=-1", 400, nil},
		{"?limit=x", 400, nil},
	}
	for _, tt := range tests {
		resp := call(t, "GET", srv.URL+"/api/v1/dags"+tt.query, "")
		if resp.status != tt.status {
			t.Errorf("GET /dags%s: %d %s, want %d", tt.query, resp.status, resp.body, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		if got := resp.header.Get("X-Total-Count"); got != "2" {
			t.Errorf("GET /dags%s: X-Total-Count %q, want 2", tt.query, got)
		}
		var dags []ui.DAG
		resp.decode(t, &dags)
		ids := []string{}
		for _, d := range dags {
			ids = append(ids, d.DAGID)
		}
		if !slices.Equal(ids, tt.wantIDs) {
			t.Errorf("GET /dags%s = %v, want %v", tt.query, ids, tt.wantIDs)
		}
	}
	for _, path := range []string{"/import-errors", "/backfills", "/pools", "/plugins"} {
		resp := call(t, "GET", srv.URL+"/api/v1"+path+"?limit=1", "")
		if resp.status != 200 || resp.header.Get("X-Total-Count") == "" {
			t.Errorf("GET %s?limit=1: %d, X-Total-Count %q", path, resp.status, resp.header.Get("X-Total-Count"))
		}
		if resp := call(t, "GET", srv.URL+"/api/v1"+path+"?limit=0", ""); resp.status != 400 {
			t.Errorf("GET %s?limit=0: %d, want 400", path, resp.status)
		}
	}
}
