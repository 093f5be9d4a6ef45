package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// In-process tests of kiln artifacts and kiln cache over a real Kiln whose
// store holds a history a scheduler would have left: run A's train stored
// a model and a folder of plots, and run B's train took them from the task
// cache. The artifact store, a real NATS object store, holds the model and
// the plots, as the worker of run A's train would have put them there.

const (
	testRunA = "manual__2026-03-01T00:00:00Z"
	testRunB = "manual__2026-03-02T00:00:00Z"
)

// testArtifact is an artifact of content, as a try records it.
func testArtifact(name, path string, dir bool, content string) store.Artifact {
	sum := sha256.Sum256([]byte(content))
	mediaType := "application/octet-stream"
	if dir {
		mediaType = "application/x-tar"
	}
	return store.Artifact{Name: name, Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), MediaType: mediaType, Dir: dir}
}

var (
	testModel     = testArtifact("model", "out/model.pkl", false, "weights v1")
	testPlots     = testArtifact("plots", "plots", true, "a tar of the plots folder")
	testTrainFrom = store.TryRef{DAGID: "churn", RunID: testRunA, TaskID: "train", Try: 1}
)

// artifactsSeed writes runs A and B of churn, the cache entry of train,
// and references to the artifacts: the model used an hour ago, the plots
// not for sixty days.
func artifactsSeed(st *store.Store) error {
	now := time.Now()
	var b store.Batch
	for i, runID := range []string{testRunA, testRunB} {
		ld := time.Date(2026, 3, i+1, 0, 0, 0, 0, time.UTC)
		end := ld.Add(time.Minute)
		b.PutRun(&store.Run{DAGID: "churn", RunID: runID, RunType: store.RunTypeManual, State: store.RunSuccess,
			LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld, QueuedAt: ld, StartDate: &ld, EndDate: &end})
		ti := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "churn", RunID: runID, TaskID: "train", State: store.TaskSuccess, TryNumber: 1, MaxTries: 3,
			Queue: "default", Pool: "default_pool", PoolSlots: 1, StartDate: &ld, EndDate: &end, Artifacts: []store.Artifact{testModel, testPlots}}
		if runID == testRunB {
			ti.CachedFrom = &testTrainFrom
		}
		b.PutTaskInstance(ti)
	}
	key := sha256.Sum256([]byte("the key of train"))
	b.PutCacheEntry(&store.CacheEntry{Key: hex.EncodeToString(key[:]), From: testTrainFrom, Created: now.Add(-time.Hour),
		Expires: now.Add(6 * 24 * time.Hour), Artifacts: []store.Artifact{testModel, testPlots}})
	b.RefArtifacts([]store.Artifact{testModel}, now.Add(-time.Hour))
	b.RefArtifacts([]store.Artifact{testPlots}, now.Add(-60*24*time.Hour))
	return st.Commit(context.Background(), &b)
}

// newArtifactsCLIEnv starts the Kiln of artifactsSeed with its objects
// stored, serves its API at KILN_SERVER, and works in a folder of its own.
func newArtifactsCLIEnv(t *testing.T) (*cliEnv, jetstream.ObjectStore) {
	t.Helper()
	e := &cliEnv{t: t, k: kilntest.Start(t, kilntest.Options{DAGs: []string{testChurnDAG, testRequiredDAG}, Seed: artifactsSeed})}
	e.serve()
	obs := e.k.ArtifactStore()
	for a, content := range map[store.Artifact]string{testModel: "weights v1", testPlots: "a tar of the plots folder"} {
		if _, err := obs.PutString(t.Context(), a.SHA256, content); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(t.TempDir())
	return e, obs
}

func TestArtifactsListAndGet(t *testing.T) {
	e, obs := newArtifactsCLIEnv(t)
	stdout, stderr, code := e.run("artifacts", "list", "--dag", "churn", "--run", testRunB)
	want := "TASK   NAME   SIZE  SHA256        PATH\n" +
		"train  model  10 B  " + testModel.SHA256[:12] + "  out/model.pkl\n" +
		"train  plots  25 B  " + testPlots.SHA256[:12] + "  plots/\n"
	if code != 0 || stdout != want {
		t.Errorf("artifacts list: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
	}
	stdout, _, code = e.run("artifacts", "list", "--dag", "churn", "--run", testRunB, "--task", "train", "--json")
	var arts []ui.RunArtifact
	if err := json.Unmarshal([]byte(stdout), &arts); code != 0 || err != nil || len(arts) != 2 || arts[0].CachedFrom == nil || *arts[0].CachedFrom != testTrainFrom {
		t.Errorf("artifacts list --json: exit %d, %v: %s; want both, cached from %v", code, err, stdout, testTrainFrom)
	}
	stdout, _, _ = e.run("runs", "show", testRunB, "--dag", "churn")
	if !strings.Contains(stdout, "train  success (cached)  1") {
		t.Errorf("runs show of the run whose train was cached:\n%s\nwant train success (cached)", stdout)
	}
	_, stderr, code = e.run("artifacts", "list", "--dag", "churn", "--run", testRunB, "--task", "trian")
	wantExit(t, code, stderr, 1, `task "trian" not found`, `did you mean "train"?`)
	_, stderr, code = e.run("artifacts", "list", "--dag", "churn")
	wantExit(t, code, stderr, 2, `required flag(s) "run" not set`)

	get := func(args ...string) (string, string, int) {
		return e.run(append([]string{"artifacts", "get", "--dag", "churn", "--run", testRunA, "--task", "train"}, args...)...)
	}
	stdout, stderr, code = get("model")
	if code != 0 || stdout != "wrote model.pkl (10 B, sha256 "+testModel.SHA256[:12]+")\n" {
		t.Errorf("artifacts get model: exit %d, %q %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile("model.pkl"); err != nil || string(b) != "weights v1" {
		t.Errorf("model.pkl = %q, %v; want the model", b, err)
	}
	_, stderr, code = get("model")
	wantExit(t, code, stderr, 1, "model.pkl exists: give --force to overwrite it")
	if _, stderr, code = get("model", "--force"); code != 0 {
		t.Errorf("artifacts get model --force: exit %d, %q", code, stderr)
	}
	if _, stderr, code = get("plots"); code != 0 {
		t.Errorf("artifacts get plots: exit %d, %q", code, stderr)
	} else if b, err := os.ReadFile("plots.tar"); err != nil || string(b) != "a tar of the plots folder" {
		t.Errorf("plots.tar = %q, %v; want the folder's tar", b, err)
	}
	stdout, stderr, code = get("model", "-o", "-")
	if code != 0 || stdout != "weights v1" {
		t.Errorf("artifacts get model -o -: exit %d, %q %q; want the model on stdout", code, stdout, stderr)
	}
	_, stderr, code = get("model", "-o", filepath.Join("sub", "m.bin"))
	wantExit(t, code, stderr, 1, "cannot write sub/m.bin: folder sub does not exist")
	_, stderr, code = get("modle")
	wantExit(t, code, stderr, 1, `has no artifact "modle"`, `did you mean "model"?`)

	// An object altered in the store: nothing is kept, and the command
	// says why.
	if _, err := obs.PutString(t.Context(), testModel.SHA256, "weights v2"); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = get("model", "-o", "altered.pkl")
	wantExit(t, code, stderr, 1, "downloading artifact model", "cut the download short", "may be corrupt")
	if _, err := os.Stat("altered.pkl"); !os.IsNotExist(err) {
		t.Errorf("the altered download was kept: %v", err)
	}
	entries, _ := os.ReadDir(".")
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".kiln-artifact-") {
			t.Errorf("a temporary file was left behind: %s", de.Name())
		}
	}
}

func TestArtifactsGC(t *testing.T) {
	e, _ := newArtifactsCLIEnv(t)
	// The plots are held by a live cache entry: kept, however old.
	stdout, stderr, code := e.run("artifacts", "gc", "--older-than", "30d", "--dry-run")
	if code != 0 || stdout != "would delete 0 artifact(s), 0 B; kept 2, 35 B\n" {
		t.Errorf("artifacts gc --dry-run: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, stderr, code := e.run("cache", "clear", "--dag", "churn", "--task", "train"); code != 0 || stdout != "cleared 1 cache entry of task train of DAG churn\n" {
		t.Errorf("cache clear: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = e.run("artifacts", "gc", "--older-than", "30d")
	if code != 0 || stdout != "deleted 1 artifact(s), 25 B; kept 1, 10 B\n" {
		t.Errorf("artifacts gc: exit %d, %q %q; want the plots deleted", code, stdout, stderr)
	}
	_, stderr, code = e.run("artifacts", "get", "--dag", "churn", "--run", testRunA, "--task", "train", "plots")
	wantExit(t, code, stderr, 1, "artifact plots (sha256 "+testPlots.SHA256+`) of task "train" is no longer stored: collected by retention`)
	for _, bad := range []string{"0", "30 days", "-1d"} {
		_, stderr, code = e.run("artifacts", "gc", "--older-than", bad)
		wantExit(t, code, stderr, 2, "--older-than", "want an age above zero")
	}
	_, stderr, code = e.run("artifacts", "gc")
	wantExit(t, code, stderr, 2, `required flag(s) "older-than" not set`)
}

func TestCacheCommands(t *testing.T) {
	e, _ := newArtifactsCLIEnv(t)
	stdout, stderr, code := e.run("cache", "list", "--dag", "churn")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "KEY ") ||
		!strings.Contains(lines[1], "churn  train  "+testRunA+"  1  ") || !strings.HasSuffix(lines[1], "  2") {
		t.Errorf("cache list: exit %d, %q, stdout:\n%s", code, stderr, stdout)
	}
	stdout, _, code = e.run("cache", "list", "--json")
	var entries []ui.CacheEntry
	if err := json.Unmarshal([]byte(stdout), &entries); code != 0 || err != nil || len(entries) != 1 || !entries[0].Live {
		t.Errorf("cache list --json: exit %d, %v: %s", code, err, stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cache", "list", "--task", "train"}, "--task needs --dag"},
		{[]string{"cache", "clear"}, "name what to clear: --dag DAG (and --task ID), or every entry with --all"},
		{[]string{"cache", "clear", "--all", "--dag", "churn"}, "--all clears every entry"},
	} {
		_, stderr, code := e.run(tc.args...)
		wantExit(t, code, stderr, 2, tc.want)
	}
	_, stderr, code = e.run("cache", "list", "--dag", "chrun")
	wantExit(t, code, stderr, 1, `DAG "chrun" not found (did you mean "churn"?)`)
	if stdout, stderr, code := e.run("cache", "clear", "--all"); code != 0 || stdout != "cleared 1 cache entry\n" {
		t.Errorf("cache clear --all: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, _, code := e.run("cache", "list"); code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("cache list after clearing: exit %d, %q; want the header only", code, stdout)
	}
}

// TestNoCacheFlags: trigger --no-cache and backfill --no-cache make runs
// that run every task.
func TestNoCacheFlags(t *testing.T) {
	e := newBackfillEnv(t)
	stdout, stderr, code := e.run("trigger", "churn", "--date", "2026-01-04", "--no-cache", "--json")
	var run ui.Run
	if err := json.Unmarshal([]byte(stdout), &run); code != 0 || err != nil {
		t.Fatalf("trigger --no-cache: exit %d, %v, %q", code, err, stderr)
	}
	if stored, err := e.k.Store().GetRun("churn", run.RunID); err != nil || !stored.NoCache {
		t.Errorf("the run triggered with --no-cache: %+v, %v; want NoCache", stored, err)
	}
	if _, stderr, code := e.run("backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-01", "--no-cache"); code != 0 {
		t.Fatalf("backfill --no-cache: exit %d, %q", code, stderr)
	}
	bfs, err := e.k.Store().Backfills("churn")
	if err != nil || len(bfs) != 1 || !bfs[0].NoCache {
		t.Errorf("the backfill made with --no-cache: %+v, %v; want NoCache", bfs, err)
	}
}
