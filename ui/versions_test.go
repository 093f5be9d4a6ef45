package ui_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/ui"
)

// TestDAGVersions reads a DAG's versions and one with its source, and the
// run's dag_version naming it.
func TestDAGVersions(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, numberDAG)
	sum := sha256.Sum256([]byte(numberDAG))
	hash := hex.EncodeToString(sum[:])

	r := call(t, "GET", srv.URL+"/api/v1/dags/n/versions", "")
	var list []ui.DAGVersion
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil {
		t.Fatalf("versions: status %d: %s", r.status, r.body)
	}
	if len(list) != 1 || list[0].Hash != hash || list[0].DAGID != "n" || list[0].Size != len(numberDAG) || list[0].Source != nil {
		t.Fatalf("versions = %s, want the file's one version without its source", r.body)
	}

	r = call(t, "GET", srv.URL+"/api/v1/dags/n/versions/"+hash, "")
	var v ui.DAGVersion
	if r.status != http.StatusOK || json.Unmarshal(r.body, &v) != nil || v.Source == nil || *v.Source != numberDAG {
		t.Fatalf("version: status %d: %s", r.status, r.body)
	}

	run := trigger(t, k, "n", "", map[string]any{"n": 1})
	r = call(t, "GET", srv.URL+"/api/v1/dags/n/runs/"+run.RunID, "")
	if !strings.Contains(string(r.body), `"dag_version":"`+hash+`"`) {
		t.Errorf("run JSON %s does not name version %s", r.body, hash)
	}

	for _, path := range []string{
		"/api/v1/dags/n/versions/" + strings.Repeat("0", 64), // no such version
		"/api/v1/dags/churn/versions/" + hash,                // another DAG's
		"/api/v1/dags/nope/versions",                         // no DAG, no versions
	} {
		if r := call(t, "GET", srv.URL+path, ""); r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404: %s", path, r.status, r.body)
		}
	}
}
