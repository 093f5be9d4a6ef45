package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// build holds the kiln binary, built once per test run by the first test
// that needs it.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// kilnBinary builds ./cmd/kiln into a temporary folder, once; TestMain
// removes the folder.
func kilnBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "kiln-browsertest-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "kiln")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/kilnhq/kiln/cmd/kiln").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("building kiln: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// A user the tests sign in as, created offline before the server starts.
type user struct{ name, role, password string }

var (
	admin    = user{"admin", "admin", "admin-secret-pw-1"}
	operator = user{"oper", "operator", "operator-secret-pw-2"}
	viewer   = user{"vera", "viewer", "viewer-secret-pw-3"}
)

// kiln is a running `kiln standalone` on loopback ports, with its own DAGs
// folder and data folder, and the three users above.
type kiln struct {
	// URL is the server's base URL, without a trailing slash.
	URL string
	// Marker is the file whose existence makes the flaky DAG's check task
	// succeed.
	Marker string
	out    lockedBuffer
}

// The test DAGs. Tasks are shell one-liners that take at most a second.
const (
	// greet echoes its typed params (number, enum, boolean). hello sleeps
	// so that the run page's first paint is never the end state.
	greetDAG = `description: Greets someone a number of times
tags: [browsertest]
params:
  count: {type: integer, default: 1, minimum: 1, maximum: 9, description: How many greetings}
  region: {type: string, enum: [eu, us], default: eu}
  loud: {type: boolean, default: false}
tasks:
  - id: hello
    plugin: shell
    with: {command: 'sleep 2; echo "hello from {{ .params.region }}, {{ .params.count }} times, loud={{ .params.loud }}"'}
  - id: done
    depends_on: [hello]
    plugin: shell
    with: {command: 'echo done'}
`
	// flaky fails its check and verify tasks until the marker file (%[1]s)
	// exists.
	flakyDAG = `description: Fails until a marker file exists
tags: [browsertest]
defaults: {plugin: shell, retries: 0}
tasks:
  - id: prepare
    with: {command: 'echo preparing'}
  - id: check
    depends_on: [prepare]
    with: {command: 'if [ -f "%[1]s" ]; then echo "marker found"; else echo "no marker yet"; exit 1; fi'}
  - id: verify
    depends_on: [prepare]
    with: {command: 'if [ -f "%[1]s" ]; then echo "verified"; else echo "cannot verify yet"; exit 1; fi'}
`
	// nightly is scheduled: with catchup off, its latest ended interval
	// runs as soon as the server sees it, so its grid has a run.
	nightlyDAG = `description: A daily three-step pipeline
schedule: "@daily"
start_date: %s
tags: [browsertest, nightly]
tasks:
  - {id: extract, plugin: shell, with: {command: 'echo "extracting {{ .ds }}"'}}
  - {id: transform, plugin: shell, depends_on: [extract], with: {command: 'echo transforming'}}
  - {id: report, plugin: shell, depends_on: [transform], with: {command: 'echo reporting'}}
`
	// tokyo runs at 09:00 in Tokyo from 2099: its next run, at the end of
	// its first interval, is 2099-01-02 00:00 UTC, for logical date
	// 2099-01-01 00:00 UTC (09:00 in Tokyo).
	tokyoDAG = `description: A daily job on Tokyo time
schedule: "0 9 * * *"
timezone: Asia/Tokyo
start_date: 2099-01-01
tags: [browsertest]
tasks:
  - {id: a, plugin: shell, with: {command: 'true'}}
`
	// models is never scheduled: its two runs are seeded into the store
	// (seedModels), with the artifacts the workers stored and a train
	// that the task cache served.
	modelsDAG = `description: Trains a model; its runs are seeded
schedule: "@daily"
start_date: 2099-01-01
tasks:
  - {id: features, plugin: shell, with: {command: 'true'}}
  - {id: train, plugin: shell, depends_on: [features], with: {command: 'true'}}
`
	// broken names a task that does not exist: an import error.
	brokenDAG = `tasks:
  - {id: a, plugin: shell, with: {command: 'true'}}
  - {id: b, plugin: shell, depends_on: [aa], with: {command: 'true'}}
`
)

// startKiln starts `kiln standalone` on the test DAGs, with the runs of
// models seeded.
func startKiln(t *testing.T) *kiln {
	t.Helper()
	root := t.TempDir()
	marker := filepath.Join(root, "marker")
	k := serveDAGs(t, root, map[string]string{
		"greet.yaml":   greetDAG,
		"flaky.yaml":   fmt.Sprintf(flakyDAG, marker),
		"nightly.yaml": fmt.Sprintf(nightlyDAG, time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly)),
		"broken.yaml":  brokenDAG,
		"tokyo.yaml":   tokyoDAG,
		"models.yaml":  modelsDAG,
	}, seedModels)
	k.Marker = marker
	return k
}

// serveDAGs writes files (name → body) into root/dags, creates the users
// offline, lets seed (if not nil) write into the store of root/data, and
// starts `kiln standalone`, killed with its whole process group when the
// test ends. Its output is logged if the test fails.
func serveDAGs(t *testing.T, root string, files map[string]string, seed func(dbPath string) error) *kiln {
	t.Helper()
	bin := kilnBinary(t)
	dags, data := filepath.Join(root, "dags"), filepath.Join(root, "data")
	k := &kiln{}
	for _, d := range []string{dags, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dags, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []user{admin, operator, viewer} {
		cmd := exec.Command(bin, "users", "add", u.name, "--role", u.role, "--password-stdin", "--data", data)
		cmd.Stdin = strings.NewReader(u.password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kiln users add %s --role %s: %v\n%s", u.name, u.role, err, out)
		}
	}

	if seed != nil {
		if err := seed(filepath.Join(data, "kiln.db")); err != nil {
			t.Fatalf("seeding the store: %v", err)
		}
	}

	addr, natsAddr := freeAddr(t), freeAddr(t)
	k.URL = "http://" + addr
	cmd := exec.Command(bin, "standalone", "--dags", dags, "--data", data, "--addr", addr,
		"--nats-listen", natsAddr, "--workers", "1", "--slots", "4", "--log-level", "warn")
	cmd.Dir = root
	cmd.SysProcAttr = childAttr()
	cmd.Stdout, cmd.Stderr = &k.out, &k.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// The group: the server, its plugin processes and their tasks.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("kiln standalone output:\n%s", k.out.String())
		}
	})
	k.waitHealthy(t, exited)
	return k
}

// The seeded runs of models: in modelsRunB, train took the result of
// modelsRunA's train from the task cache.
const (
	modelsRunA = "manual__2026-03-01T00:00:00Z"
	modelsRunB = "manual__2026-03-02T00:00:00Z"
)

// modelArtifact is the model the seeded train stored.
var modelArtifact = store.Artifact{Name: "model", Path: "out/model.pkl", Size: 3 << 20, MediaType: "application/octet-stream",
	SHA256: "5e2bf57d3f40c4b6df69daf1936cb766f832374b4fc0259a7cbff06e2f70f269"}

// seedModels writes the finished runs of models into the store of a data
// folder, before the server starts, as a scheduler would have left them.
func seedModels(path string) error {
	st, err := store.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	var b store.Batch
	from := &store.TryRef{DAGID: "models", RunID: modelsRunA, TaskID: "train", Try: 1}
	for i, runID := range []string{modelsRunA, modelsRunB} {
		ld := time.Date(2026, 3, i+1, 0, 0, 0, 0, time.UTC)
		end := ld.Add(time.Minute)
		b.PutRun(&store.Run{DAGID: "models", RunID: runID, RunType: store.RunTypeManual, State: store.RunSuccess,
			LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld, QueuedAt: ld, StartDate: &ld, EndDate: &end})
		for _, task := range []string{"features", "train"} {
			ti := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "models", RunID: runID, TaskID: task, State: store.TaskSuccess, TryNumber: 1, MaxTries: 1,
				Queue: "default", Pool: "default_pool", PoolSlots: 1, StartDate: &ld, EndDate: &end}
			if task == "train" {
				ti.Artifacts = []store.Artifact{modelArtifact}
				if runID == modelsRunB {
					ti.CachedFrom, ti.StartDate = from, nil
				}
			}
			b.PutTaskInstance(ti)
			b.PutTry(&store.Try{MapIndex: store.NoMapIndex, DAGID: "models", RunID: runID, TaskID: task, Number: 1, State: store.TaskSuccess, QueuedAt: ld,
				StartDate: ti.StartDate, EndDate: &end, Artifacts: ti.Artifacts, CachedFrom: ti.CachedFrom})
		}
	}
	return st.Commit(context.Background(), &b)
}

// waitHealthy waits for /healthz to answer 200.
func (k *kiln) waitHealthy(t *testing.T, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("kiln standalone exited while starting:\n%s", k.out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 within 30s (last: %v)\n%s", k.URL, err, k.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
