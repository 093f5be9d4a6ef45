package scheduler_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backfillJSON is the part of the API's backfill object these tests read.
type backfillJSON struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Counts struct {
		Total, Pending, Running, Success, Failed, Skipped int
	} `json:"counts"`
	Dates []struct {
		LogicalDate time.Time `json:"logical_date"`
		Action      string    `json:"action"`
		RunID       string    `json:"run_id"`
		State       string    `json:"state"`
	} `json:"dates"`
}

func getBackfill(t *testing.T, api, id string) (backfillJSON, bool) {
	var bf backfillJSON
	resp, err := http.Get(api + "/backfills/" + id)
	if err != nil {
		return bf, false
	}
	defer resp.Body.Close()
	return bf, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&bf) == nil
}

// TestStandaloneKilledMidBackfill kills `kiln standalone` with SIGKILL while a
// backfill runs: after the restart the backfill resumes by itself and ends
// with every date run exactly once.
func TestStandaloneKilledMidBackfill(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().AddDate(0, 0, -40).Format(time.DateOnly)
	dagSrc := fmt.Sprintf(`id: history
schedule: "@daily"
start_date: %s
paused: true
tasks:
  - {id: work, plugin: shell, retries: 3, retry_delay: 100ms, with: {command: 'echo "{{ .ds }} $KILN_TRY_NUMBER" >> %s; sleep 0.2'}}
`, start, filepath.Join(dir, "executions"))
	if err := os.WriteFile(filepath.Join(dags, "history.yaml"), []byte(dagSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, natsAddr := freeAddr(t), freeAddr(t)
	standalone := func() *osexec.Cmd {
		return startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
			"--nats-listen", natsAddr, "--workers", "1", "--slots", "4", "--heartbeat-timeout", "2s", "--log-level", "warn")
	}
	api := "http://" + addr + "/api/v1"
	first := standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	body := fmt.Sprintf(`{"from": %q, "to": %q, "max_active_runs": 3}`,
		today.AddDate(0, 0, -30).Format(time.DateOnly), today.AddDate(0, 0, -2).Format(time.DateOnly))
	resp, err := http.Post(api+"/dags/history/backfills", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var bf backfillJSON
	if err := json.NewDecoder(resp.Body).Decode(&bf); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating the backfill: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if bf.Counts.Total != 29 {
		t.Fatalf("backfill has %d dates, want 29", bf.Counts.Total)
	}
	waitUntil(t, "some dates to run", 30*time.Second, func() bool {
		b, ok := getBackfill(t, api, bf.ID)
		return ok && b.Counts.Success >= 5
	})
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	waitUntil(t, "the backfill to end after the restart", 90*time.Second, func() bool {
		b, ok := getBackfill(t, api, bf.ID)
		bf = b
		return ok && b.State != "running"
	})
	if bf.State != "success" || bf.Counts.Success != 29 {
		t.Fatalf("backfill %s %+v, want success for all 29 dates", bf.State, bf.Counts)
	}
	// Every date ran, and no date ran twice under the same try.
	data, _ := os.ReadFile(filepath.Join(dir, "executions"))
	seen := map[string]bool{}
	dates := map[string]bool{}
	for _, l := range lines(string(data)) {
		if seen[l] {
			t.Errorf("%q ran twice", l)
		}
		seen[l] = true
		dates[strings.Fields(l)[0]] = true
	}
	if len(dates) != 29 {
		t.Errorf("%d dates ran, want 29", len(dates))
	}
	runIDs := map[string]bool{}
	for _, d := range bf.Dates {
		if runIDs[d.RunID] {
			t.Errorf("run %s serves two dates", d.RunID)
		}
		runIDs[d.RunID] = true
	}
}

// TestCLIBackfill drives `kiln backfill` against a real `kiln standalone`:
// a dry run writes nothing, a 5-date backfill with one failing date exits
// 1 naming it, and re-running with --reprocess failed runs only that date.
func TestCLIBackfill(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	failing := today.AddDate(0, 0, -4).Format(time.DateOnly)
	if err := os.WriteFile(filepath.Join(dags, "daily.yaml"), []byte("id: daily\n"+dailyDAGFrom(20, failing)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, natsAddr := freeAddr(t), freeAddr(t)
	startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
		"--nats-listen", natsAddr, "--workers", "1", "--log-level", "warn")
	waitHTTP(t, "http://"+addr+"/healthz")
	kiln := func(args ...string) (string, int) {
		cmd := osexec.Command(kilnBin, append(args, "--server", "http://"+addr)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*osexec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	from, to := today.AddDate(0, 0, -6).Format(time.DateOnly), today.AddDate(0, 0, -2).Format(time.DateOnly)

	out, code := kiln("backfill", "daily", "--from", from, "--to", to, "--dry-run")
	if code != 0 || strings.Count(out, "  new") != 5 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if out, _ := kiln("runs", "list", "daily", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("the dry run created runs: %s", out)
	}

	out, code = kiln("backfill", "daily", "--from", from, "--to", to, "--wait")
	if code != 1 || !strings.Contains(out, failing) {
		t.Fatalf("backfill --wait: exit %d, want 1 naming %s\n%s", code, failing, out)
	}
	out, _ = kiln("runs", "list", "daily", "--json")
	var runs []struct {
		RunType string `json:"run_type"`
		State   string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 5 {
		t.Fatalf("runs list: %v\n%s", err, out)
	}
	failed := 0
	for _, r := range runs {
		if r.RunType != "backfill" {
			t.Errorf("run type %s, want backfill", r.RunType)
		}
		if r.State == "failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed runs, want 1", failed)
	}

	out, code = kiln("backfill", "daily", "--from", from, "--to", to, "--reprocess", "none", "--dry-run")
	if code != 0 || strings.Count(out, "  skip: ") != 5 {
		t.Errorf("reprocess none over the same range: exit %d\n%s", code, out)
	}
	out, code = kiln("backfill", "daily", "--from", from, "--to", to, "--reprocess", "failed", "--dry-run")
	if code != 0 || strings.Count(out, "  re-run: ") != 1 || !strings.Contains(out, failing) {
		t.Errorf("reprocess failed dry run: exit %d\n%s", code, out)
	}
	out, code = kiln("backfill", "daily", "--from", from, "--to", today.AddDate(0, 0, 3).Format(time.DateOnly))
	if code != 2 || !strings.Contains(out, "future") {
		t.Errorf("a range into the future: exit %d, want 2\n%s", code, out)
	}
}
