package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// These measurements run the real `kiln standalone` binary and read its
// resident memory from /proc. They take a minute, so they run from
// `make bench` (KILN_BENCH=1) rather than with the tests.

func needBench(t *testing.T) {
	if os.Getenv("KILN_BENCH") == "" {
		t.Skip("set KILN_BENCH=1 (make bench) to measure memory")
	}
}

type standaloneProc struct {
	cmd *osexec.Cmd
	api string
}

func runStandalone(t *testing.T, dir, dags string, slots int) *standaloneProc {
	t.Helper()
	addr, natsAddr := freeAddr(t), freeAddr(t)
	cmd := startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
		"--nats-listen", natsAddr, "--workers", "1", "--slots", strconv.Itoa(slots), "--log-level", "warn")
	waitHTTP(t, "http://"+addr+"/healthz")
	return &standaloneProc{cmd: cmd, api: "http://" + addr + "/api/v1"}
}

// rss returns the current and peak resident set of the process, in MiB,
// and the part of the current one that is anonymous memory (heap, stacks)
// rather than pages of mapped files such as the store.
func (p *standaloneProc) rss(t *testing.T) (cur, peak, anon float64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		}
	}
	return cur, peak, anon
}

func (p *standaloneProc) trigger(t *testing.T, dagID string) string {
	t.Helper()
	return trigger(t, p.api, dagID, nil)
}

func (p *standaloneProc) waitRun(t *testing.T, dagID, runID string, timeout time.Duration) {
	t.Helper()
	waitUntil(t, "run "+runID, timeout, func() bool {
		resp, err := http.Get(p.api + "/dags/" + dagID + "/runs/" + runID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var run struct {
			State string `json:"state"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&run)
		if run.State == "failed" {
			t.Fatalf("run %s failed", runID)
		}
		return run.State == "success"
	})
}

// TestStandaloneMemoryThousandTasks: peak RSS while 1,000 independent tasks
// run (target under 150 MB).
func TestStandaloneMemoryThousandTasks(t *testing.T) {
	needBench(t)
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dags, "fan.yaml"), []byte(fanDAG(1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runStandalone(t, dir, dags, 8)
	began := time.Now()
	p.waitRun(t, "fan", p.trigger(t, "fan"), 2*time.Minute)
	_, peak, anon := p.rss(t)
	t.Logf("1,000 independent tasks: %s, peak RSS %.1f MiB (anonymous now %.1f MiB)", time.Since(began).Round(time.Millisecond), peak, anon)
	if peak > 150 {
		t.Errorf("peak RSS %.1f MiB, target under 150", peak)
	}
}

// TestStandaloneMemoryLargeHistory: RSS with 1,000 DAGs loaded and 100,000
// finished task instances in the store, and its growth over 10,000 runs of
// a small DAG (targets: under 150 MB; no growth).
func TestStandaloneMemoryLargeHistory(t *testing.T) {
	needBench(t)
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	for i := range 1000 {
		path := filepath.Join(dags, fmt.Sprintf("team%d", i%10), fmt.Sprintf("d%04d.yaml", i))
		src := fmt.Sprintf("id: d%04d\nschedule: \"0 3 * * *\"\nstart_date: 2026-01-01\npaused: true\n%s", i, strings.TrimPrefix(chainDAG(20), "id: chain\n"))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dags, "small.yaml"), []byte("id: small\ntasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seedHistory(t, filepath.Join(dir, "data", "kiln.db"), 1000, 100)
	p := runStandalone(t, dir, dags, 8)
	loaded, _, loadedAnon := p.rss(t)
	t.Logf("1,000 DAGs and 100,000 finished task instances: RSS %.1f MiB after start (anonymous %.1f MiB)", loaded, loadedAnon)

	runs := func(n int) {
		ids := make([]string, 0, 64)
		for i := 0; i < n; i++ {
			ids = append(ids, p.trigger(t, "small"))
			if len(ids) == cap(ids) || i == n-1 {
				for _, id := range ids {
					p.waitRun(t, "small", id, time.Minute)
				}
				ids = ids[:0]
			}
		}
	}
	began := time.Now()
	runs(1000)
	after1k, _, anon1k := p.rss(t)
	runs(9000)
	after10k, peak, anon10k := p.rss(t)
	t.Logf("10,000 runs of a 1-task DAG in %s: RSS %.1f MiB after 1,000, %.1f MiB after 10,000 (peak %.1f); anonymous %.1f then %.1f MiB",
		time.Since(began).Round(time.Second), after1k, after10k, peak, anon1k, anon10k)
	if peak > 150 {
		t.Errorf("peak RSS %.1f MiB, target under 150", peak)
	}
	if anon10k > anon1k*1.15+5 {
		t.Errorf("anonymous memory grew from %.1f to %.1f MiB between 1,000 and 10,000 runs", anon1k, anon10k)
	}
}

// seedHistory writes finished runs of the generated DAGs straight into
// the store: dags × perDAG task instances in all.
func seedHistory(t *testing.T, path string, dags, perDAG int) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	day := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	for d := range dags {
		b := &store.Batch{}
		dagID := fmt.Sprintf("d%04d", d)
		for r := range perDAG / 20 {
			ld := day.Add(time.Duration(r) * 24 * time.Hour)
			end := ld.Add(time.Hour)
			run := &store.Run{DAGID: dagID, RunID: "scheduled__" + ld.Format(time.RFC3339), RunType: "scheduled",
				State: store.RunSuccess, LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld.Add(24 * time.Hour),
				QueuedAt: end, StartDate: &end, EndDate: &end}
			b.PutRun(run)
			for k := range 20 {
				ti := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: dagID, RunID: run.RunID, TaskID: fmt.Sprintf("t%03d", k), State: store.TaskSuccess,
					TryNumber: 1, MaxTries: 1, Queue: "default", Pool: "default_pool", PoolSlots: 1, Priority: 1, StartDate: &end, EndDate: &end}
				b.PutTaskInstance(ti)
				b.PutTry(&store.Try{MapIndex: store.NoMapIndex, DAGID: dagID, RunID: run.RunID, TaskID: ti.TaskID, Number: 1, State: store.TaskSuccess, QueuedAt: end, StartDate: &end, EndDate: &end})
			}
		}
		if err := st.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}
