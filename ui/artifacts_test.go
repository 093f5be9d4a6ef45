package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// Tests of the artifact and task cache routes over a real Kiln whose store
// holds the history the scheduler and workers would have left (mlSeed),
// and whose artifact store, a real NATS object store, the objects a
// worker would have put there.

// mlDAG is the DAG of the seeded history; it starts far ahead, so the
// scheduler creates no run of it.
const mlDAG = `
id: ml
start_date: 2099-01-01
schedule: "@daily"
tasks:
  - {id: features, plugin: shell, with: {command: "true"}}
  - {id: train, plugin: shell, depends_on: [features], with: {command: "true"}}
  - {id: evaluate, plugin: shell, depends_on: [train], with: {command: "true"}}
`

// artifactOf is an artifact of the given content, as a try records it.
func artifactOf(name, path, mediaType string, dir bool, content string) store.Artifact {
	sum := sha256.Sum256([]byte(content))
	return store.Artifact{Name: name, Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), MediaType: mediaType, Dir: dir}
}

// The seeded artifacts and their contents. plot is recorded and was
// never stored (or was collected since).
var (
	contents = map[string]string{
		"features": "id,x\n1,2\n",
		"model":    "weights v1",
		"report":   "a tar of the report folder",
	}
	featuresArt = artifactOf("features", "out/features.csv", "text/csv", false, contents["features"])
	modelArt    = artifactOf("model", "model.pkl", "application/octet-stream", false, contents["model"])
	reportArt   = artifactOf("report", "report", "application/x-tar", true, contents["report"])
	plotArt     = artifactOf("plot", "plots/roc.png", "image/png", false, "a plot")
)

// The seeded runs of ml: in runB, train took its result from runA's
// train, from the task cache.
const (
	runA = "manual__2026-03-01T00:00:00Z"
	runB = "manual__2026-03-02T00:00:00Z"
)

var trainA = store.TryRef{DAGID: "ml", RunID: runA, TaskID: "train", Try: 1}

// mlSeed writes the two runs with their tries, the task cache's entries
// (train's live, features' expired) and the artifacts' references:
// features' old, the rest recent.
func mlSeed(st *store.Store) error {
	now := time.Now()
	var b store.Batch
	for _, r := range []struct {
		id     string
		day    int
		arts   map[string][]store.Artifact
		cached map[string]*store.TryRef
	}{
		{runA, 1, map[string][]store.Artifact{"features": {featuresArt}, "train": {modelArt, reportArt}, "evaluate": {plotArt}}, nil},
		{runB, 2, map[string][]store.Artifact{"features": {featuresArt}, "train": {modelArt, reportArt}}, map[string]*store.TryRef{"train": &trainA}},
	} {
		run := finishedRun("ml", time.Date(2026, 3, r.day, 0, 0, 0, 0, time.UTC), store.RunSuccess)
		run.RunID, run.RunType = r.id, store.RunTypeManual
		b.PutRun(run)
		for _, task := range []string{"features", "train", "evaluate"} {
			ti := finishedTask(run, task, store.TaskSuccess)
			ti.Artifacts, ti.CachedFrom = r.arts[task], r.cached[task]
			b.PutTaskInstance(ti)
			b.PutTry(&store.Try{MapIndex: store.NoMapIndex, DAGID: "ml", RunID: run.RunID, TaskID: task, Number: 1, State: store.TaskSuccess, Worker: "worker-1",
				QueuedAt: run.QueuedAt, StartDate: run.StartDate, EndDate: run.EndDate, Artifacts: ti.Artifacts, CachedFrom: ti.CachedFrom})
		}
	}
	b.PutCacheEntry(&store.CacheEntry{Key: keyOf("train"), From: trainA, Created: now.Add(-time.Hour),
		Outputs: map[string]any{"auc": "0.91"}, Artifacts: []store.Artifact{modelArt, reportArt}})
	b.PutCacheEntry(&store.CacheEntry{Key: keyOf("features"), From: store.TryRef{DAGID: "ml", RunID: runA, TaskID: "features", Try: 1},
		Created: now.Add(-60 * 24 * time.Hour), Expires: now.Add(-53 * 24 * time.Hour), Artifacts: []store.Artifact{featuresArt}})
	b.RefArtifacts([]store.Artifact{featuresArt}, now.Add(-60*24*time.Hour))
	b.RefArtifacts([]store.Artifact{modelArt, reportArt, plotArt}, now.Add(-time.Hour))
	return st.Commit(context.Background(), &b)
}

// keyOf is a made-up cache key.
func keyOf(s string) string {
	sum := sha256.Sum256([]byte("cache key of " + s))
	return hex.EncodeToString(sum[:])
}

// newArtifactsAPI starts a Kiln with the ml history and the stored
// objects of features, model and report, and serves its API.
func newArtifactsAPI(t *testing.T) (*kilntest.Kiln, *httptest.Server, jetstream.ObjectStore) {
	t.Helper()
	k := kilntest.Start(t, kilntest.Options{DAGs: []string{mlDAG, manualDAG}, Seed: mlSeed})
	obs := k.ArtifactStore()
	for _, a := range []store.Artifact{featuresArt, modelArt, reportArt} {
		if _, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: a.SHA256}, strings.NewReader(contents[a.Name])); err != nil {
			t.Fatal(err)
		}
	}
	return k, serveAPI(t, k, ui.Options{}), obs
}

func TestRunArtifacts(t *testing.T) {
	t.Parallel()
	_, srv, _ := newArtifactsAPI(t)
	base := srv.URL + "/api/v1/dags/ml/runs/"
	view := func(task string, a store.Artifact, from *store.TryRef) ui.RunArtifact {
		return ui.RunArtifact{TaskID: task, MapIndex: store.NoMapIndex, TryNumber: 1, CachedFrom: from, Artifact: ui.Artifact{
			Name: a.Name, Path: a.Path, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType, Dir: a.Dir}}
	}
	for _, tc := range []struct {
		run, query string
		want       []ui.RunArtifact
	}{
		{runA, "", []ui.RunArtifact{view("features", featuresArt, nil), view("train", modelArt, nil), view("train", reportArt, nil), view("evaluate", plotArt, nil)}},
		{runA, "?task=train", []ui.RunArtifact{view("train", modelArt, nil), view("train", reportArt, nil)}},
		{runB, "?task=train", []ui.RunArtifact{view("train", modelArt, &trainA), view("train", reportArt, &trainA)}},
		{runB, "?task=evaluate", []ui.RunArtifact{}},
	} {
		r := call(t, "GET", base+tc.run+"/artifacts"+tc.query, "")
		var got []ui.RunArtifact
		r.decode(t, &got)
		if r.status != 200 || !cmp.Equal(tc.want, got) {
			t.Errorf("%s%s: %d %s\n(-want +got):\n%s", tc.run, tc.query, r.status, r.body, cmp.Diff(tc.want, got))
		}
	}
	var raw []json.RawMessage
	call(t, "GET", base+runA+"/artifacts?task=features", "").decode(t, &raw)
	want := []string{"dir", "map_index", "media_type", "name", "path", "sha256", "size", "task_id", "try_number"}
	if diff := cmp.Diff(want, keys(t, raw[0])); diff != "" {
		t.Errorf("artifact keys (-want +got):\n%s", diff)
	}
	call(t, "GET", base+runA+"/artifacts?task=trian", "").wantError(t, 404, `task "trian" not found`, `did you mean "train"?`)
	call(t, "GET", base+"nope/artifacts", "").wantError(t, 404, `run "nope" of DAG "ml" not found`)
}

func TestGetArtifact(t *testing.T) {
	t.Parallel()
	_, srv, obs := newArtifactsAPI(t)
	artifactURL := func(run, task, name string) string {
		return srv.URL + "/api/v1/dags/ml/runs/" + run + "/tasks/" + task + "/artifacts/" + name
	}
	for _, tc := range []struct {
		run, task string
		a         store.Artifact
		file      string
	}{
		{runA, "features", featuresArt, "features.csv"},
		{runA, "train", modelArt, "model.pkl"},
		{runA, "train", reportArt, "report.tar"},
		{runB, "train", modelArt, "model.pkl"}, // taken from the cache
	} {
		r := call(t, "GET", artifactURL(tc.run, tc.task, tc.a.Name), "")
		h := r.header
		if r.status != 200 || string(r.body) != contents[tc.a.Name] {
			t.Errorf("%s/%s: %d %q, want 200 %q", tc.task, tc.a.Name, r.status, r.body, contents[tc.a.Name])
		}
		wantHeaders := map[string]string{
			"Content-Type":        tc.a.MediaType,
			"Content-Length":      strconv.FormatInt(tc.a.Size, 10),
			"Etag":                `"` + tc.a.SHA256 + `"`,
			"Content-Disposition": `attachment; filename=` + tc.file,
		}
		for k, v := range wantHeaders {
			if h.Get(k) != v {
				t.Errorf("%s/%s: %s = %q, want %q", tc.task, tc.a.Name, k, h.Get(k), v)
			}
		}
	}

	// A client that has it already is told so.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", artifactURL(runA, "train", "model"), nil)
	req.Header.Set("If-None-Match", `"`+modelArt.SHA256+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != `"`+modelArt.SHA256+`"` {
		t.Errorf("If-None-Match with its ETag: %d, ETag %q; want 304 with the ETag", resp.StatusCode, resp.Header.Get("ETag"))
	}

	call(t, "GET", artifactURL(runA, "train", "modle"), "").wantError(t, 404, `task "train" of run "`+runA+`" has no artifact "modle"`, `did you mean "model"?`, "it has model, report")
	call(t, "GET", artifactURL(runB, "evaluate", "plot"), "").wantError(t, 404, `has no artifact "plot": it stored none`)
	call(t, "GET", artifactURL(runA, "trian", "model"), "").wantError(t, 404, `task "trian" not found in run`, `did you mean "train"?`)
	call(t, "GET", artifactURL(runA, "evaluate", "plot"), "").wantError(t, 404,
		"artifact plot (sha256 "+plotArt.SHA256+`) of task "evaluate" is no longer stored: collected by retention`)

	// An object altered in the store: the answer stops short of its
	// Content-Length, so no client takes the wrong content for whole.
	if _, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: modelArt.SHA256}, strings.NewReader("weights v2")); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(artifactURL(runA, "train", "model"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("a corrupt object: %d %q, read error %v; want the answer cut short", resp.StatusCode, body, err)
	}
}

// TestCachedInRunJSON: a task instance that took its result from the
// task cache says so in the run, the task instances and its try, with
// the artifacts it has; others have neither key.
func TestCachedInRunJSON(t *testing.T) {
	t.Parallel()
	_, srv, _ := newArtifactsAPI(t)
	r := call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runB, "")
	var raw struct{ Tasks []json.RawMessage }
	r.decode(t, &raw)
	if diff := cmp.Diff(slices.Sorted(slices.Values(append(slices.Clone(runTaskKeys), "artifacts", "cached", "cached_from"))), keys(t, raw.Tasks[1])); diff != "" {
		t.Errorf("keys of the cached task (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(runTaskKeys, keys(t, raw.Tasks[2])); diff != "" {
		t.Errorf("keys of a task with no artifacts, not cached (-want +got):\n%s", diff)
	}
	var run ui.Run
	r.decode(t, &run)
	train := run.Tasks[1]
	if !train.Cached || !cmp.Equal(train.CachedFrom, &trainA) || len(train.Artifacts) != 2 || train.Artifacts[1].Name != "report" || !train.Artifacts[1].Dir {
		t.Errorf("the cached train = %+v, want cached from %v with model and report", train, trainA)
	}
	if run.Tasks[0].Cached || run.Tasks[0].CachedFrom != nil || len(run.Tasks[0].Artifacts) != 1 {
		t.Errorf("features = %+v, want it not cached, with its artifact", run.Tasks[0])
	}
	if !strings.Contains(string(r.body), `"cached":true,"cached_from":{"dag_id":"ml","run_id":"`+runA+`","task_id":"train","try":1}`) {
		t.Errorf("run JSON %s does not say train was cached from %s", r.body, runA)
	}

	var tis []ui.TaskInstance
	call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runB+"/tasks", "").decode(t, &tis)
	if ti := tis[1]; !ti.Cached || !cmp.Equal(ti.CachedFrom, &trainA) || len(ti.Artifacts) != 2 || !ti.Tries[0].Cached || len(ti.Tries[0].Artifacts) != 2 {
		t.Errorf("the cached train's task instance = %+v, want it and its try cached with two artifacts", ti)
	}
	var try ui.TryDetail
	call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runB+"/tasks/train/tries/1", "").decode(t, &try)
	if !try.Cached || !cmp.Equal(try.CachedFrom, &trainA) {
		t.Errorf("the cached train's try = %+v, want it cached from %v", try, trainA)
	}
}

func TestCacheList(t *testing.T) {
	t.Parallel()
	k, srv, _ := newArtifactsAPI(t)
	list := func(query string) []ui.CacheEntry {
		t.Helper()
		r := call(t, "GET", srv.URL+"/api/v1/cache"+query, "")
		if r.status != 200 {
			t.Fatalf("GET /api/v1/cache%s: %d %s", query, r.status, r.body)
		}
		var out []ui.CacheEntry
		r.decode(t, &out)
		return out
	}
	all := list("")
	if len(all) != 2 || all[0].Key != keyOf("train") || !all[0].Live || all[0].Expires != nil || all[0].Outputs["auc"] != "0.91" ||
		len(all[0].Artifacts) != 2 || all[1].Key != keyOf("features") || all[1].Live || all[1].Expires == nil {
		t.Errorf("every entry = %+v, want train's (live, never expires) then features' (expired)", all)
	}
	if got := list("?dag=ml&task=train"); len(got) != 1 || got[0].From != trainA {
		t.Errorf("train's entries = %+v, want the one from %v", got, trainA)
	}
	if got := list("?dag=adhoc"); len(got) != 0 {
		t.Errorf("adhoc's entries = %+v, want none", got)
	}
	call(t, "GET", srv.URL+"/api/v1/cache?task=train", "").wantError(t, 400, "task: needs dag")
	call(t, "GET", srv.URL+"/api/v1/cache?dag=lm", "").wantError(t, 404, `DAG "lm" not found`, `did you mean "ml"?`)
	call(t, "DELETE", srv.URL+"/api/v1/cache?dag=lm", "").wantError(t, 404, `DAG "lm" not found`, `did you mean "ml"?`)

	r := call(t, "DELETE", srv.URL+"/api/v1/cache?dag=ml&task=train", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"cleared":1}` {
		t.Errorf("clearing train's entries: %d %s, want {\"cleared\":1}", r.status, r.body)
	}
	if _, err := k.Store().CacheEntry(keyOf("train")); err == nil {
		t.Error("train's entry is still stored")
	}
	if r := call(t, "DELETE", srv.URL+"/api/v1/cache", ""); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"cleared":1}` {
		t.Errorf("clearing every entry: %d %s, want the one left cleared", r.status, r.body)
	}
}

func TestArtifactGCAPI(t *testing.T) {
	t.Parallel()
	_, srv, obs := newArtifactsAPI(t)
	// An object no try recorded, just stored: its try may not have
	// reported yet.
	if _, err := obs.PutString(t.Context(), keyOf("orphan"), "an upload whose try did not report yet"); err != nil {
		t.Fatal(err)
	}
	gc := func(body string) ui.ArtifactGCReport {
		t.Helper()
		r := call(t, "POST", srv.URL+"/api/v1/artifacts/gc", body)
		if r.status != 200 {
			t.Fatalf("POST %s: %d %s", body, r.status, r.body)
		}
		var rep ui.ArtifactGCReport
		r.decode(t, &rep)
		return rep
	}
	kept := modelArt.Size + reportArt.Size + int64(len("an upload whose try did not report yet"))
	want := ui.ArtifactGCReport{OlderThan: "30d", DryRun: true, Kept: 3, Deleted: 1, KeptBytes: kept, FreedBytes: featuresArt.Size}
	if got := gc(`{"older_than": "30d", "dry_run": true}`); got != want {
		t.Errorf("dry run = %+v, want %+v", got, want)
	}
	if r := call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runA+"/tasks/features/artifacts/features", ""); r.status != 200 {
		t.Errorf("features after the dry run: %d %s, want it still there", r.status, r.body)
	}
	want.DryRun, want.CacheEntriesDropped = false, 1
	if got := gc(`{"older_than": "30d"}`); got != want {
		t.Errorf("collection = %+v, want %+v", got, want)
	}
	call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runA+"/tasks/features/artifacts/features", "").wantError(t, 404, "is no longer stored: collected by retention")
	if r := call(t, "GET", srv.URL+"/api/v1/dags/ml/runs/"+runA+"/tasks/train/artifacts/model", ""); r.status != 200 {
		t.Errorf("model, referenced an hour ago: %d %s, want it kept", r.status, r.body)
	}
	for body, msg := range map[string]string{
		`{}`:                           "older_than: required",
		`{"older_than": "0d"}`:         "want a duration above zero",
		`{"older_than": "30 days"}`:    `got "30 days"`,
		`{"older_than": "-1h"}`:        "above zero",
		`{"older_than": 30}`:           "older_than: want a string",
		`{"older_than": "1d", "x": 1}`: `unknown field "x"`,
	} {
		call(t, "POST", srv.URL+"/api/v1/artifacts/gc", body).wantError(t, 400, msg)
	}
}

// TestNoCacheRequests: trigger and backfill bodies carry no_cache onto
// the runs.
func TestNoCacheRequests(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, `
id: daily
schedule: "@daily"
start_date: 2026-01-01
catchup: false
paused: true
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`)
	r := call(t, "POST", srv.URL+"/api/v1/dags/adhoc/runs", `{"no_cache": true}`)
	var run ui.Run
	r.decode(t, &run)
	if stored, err := k.Store().GetRun("adhoc", run.RunID); err != nil || !stored.NoCache {
		t.Errorf("a run triggered with no_cache: %+v, %v; want NoCache", stored, err)
	}
	r = call(t, "POST", srv.URL+"/api/v1/dags/daily/backfills", `{"from": "2026-01-01", "to": "2026-01-02", "no_cache": true}`)
	if r.status != http.StatusCreated {
		t.Fatalf("backfill: %d %s", r.status, r.body)
	}
	bfs, err := k.Store().Backfills("daily")
	if err != nil || len(bfs) != 1 || !bfs[0].NoCache {
		t.Errorf("a backfill with no_cache: %+v, %v; want NoCache", bfs, err)
	}
}

// TestArtifactAndCachedPages: the run page marks the task the cache
// served, with a link to where its result came from, and lists the picked
// task's artifacts with their sizes, hashes and download links; the grid
// marks its cell.
func TestArtifactAndCachedPages(t *testing.T) {
	t.Parallel()
	_, srv, _ := newArtifactsAPI(t)
	d := getPage(t, srv.URL+"/dags/ml/runs/"+runB+"?task=train").want(t, http.StatusOK)
	fromHref := "/dags/ml/runs/" + url.PathEscape(runA) + "?task=train"
	if b := d.one(`#tasks tr[data-task=train] a.badge.cached`); b.attr("href") != fromHref || !strings.Contains(b.attr("title"), "try 1 in run "+runA) {
		t.Errorf("the tasks table's cached badge links to %q (%q), want %q", b.attr("href"), b.attr("title"), fromHref)
	}
	if n := len(d.all(`#tasks a.badge.cached`)); n != 1 {
		t.Errorf("%d cached badges in the tasks table, want train's only", n)
	}
	if got := d.one("#task-cached-from").text(); !strings.Contains(got, runA+", try 1") {
		t.Errorf("the task's Cached from = %q, want run A's try 1", got)
	}
	rows := d.all("table#task-artifacts tbody tr")
	if len(rows) != 2 {
		t.Fatalf("%d artifact rows, want model and report", len(rows))
	}
	model := d.one(`#task-artifacts tr[data-artifact=model]`)
	if sha := model.one("code.sha"); sha.text() != modelArt.SHA256[:12] || sha.attr("title") != modelArt.SHA256 {
		t.Errorf("model's hash shows %q (title %q), want the short hash with the whole one in the title", sha.text(), sha.attr("title"))
	}
	if got := model.text(); !strings.Contains(got, "model.pkl") || !strings.Contains(got, "10 B") {
		t.Errorf("model's row = %q, want its path and size", got)
	}
	href := model.one("a.artifact-download").attr("href")
	if want := "/api/v1/dags/ml/runs/" + url.PathEscape(runB) + "/tasks/train/artifacts/model"; href != want {
		t.Errorf("model's download link = %q, want %q", href, want)
	}
	if r := call(t, "GET", srv.URL+href, ""); r.status != 200 || string(r.body) != contents["model"] {
		t.Errorf("following the download link: %d %q, want the model", r.status, r.body)
	}
	if got := d.one(`#task-artifacts tr[data-artifact=report]`).text(); !strings.Contains(got, "report/") || !strings.Contains(got, "a folder, as a tar") {
		t.Errorf("report's row = %q, want it shown as a folder", got)
	}

	// A task that ran has no badge, and no artifacts table without
	// artifacts.
	d = getPage(t, srv.URL+"/dags/ml/runs/"+runB+"?task=evaluate").want(t, http.StatusOK)
	if len(d.all("#task-cached")) != 0 || len(d.all("#task-artifacts")) != 0 {
		t.Error("evaluate, which ran and stored nothing, shows a cached badge or artifacts")
	}

	g := getPage(t, srv.URL+"/dags/ml").want(t, http.StatusOK)
	cell := g.one(`#grid a.cell[data-task=train][data-run=` + runB + `]`)
	if cell.attr("data-cached") != "1" || cell.attr("title") != "success · cached from "+runA {
		t.Errorf("the grid's cell of the cached train: data-cached %q, title %q", cell.attr("data-cached"), cell.attr("title"))
	}
	if other := g.one(`#grid a.cell[data-task=train][data-run=` + runA + `]`); other.attr("data-cached") != "" {
		t.Error("the grid marks run A's train, which ran, as cached")
	}
}
