package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/natstest"
)

// haServer is a `kiln server --ha` process a test started.
type haServer struct {
	*kilnProc
	name, addr string
}

// health is what /healthz says of a server's place in the cluster.
type health struct {
	Status    string `json:"status"`
	Scheduler struct {
		Role   string `json:"role"`
		Name   string `json:"name"`
		Leader string `json:"leader"`
		LogSeq uint64 `json:"log_seq"`
		Lag    uint64 `json:"lag"`
	} `json:"scheduler"`
}

func (s *haServer) health() (health, bool) {
	var h health
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + s.addr + "/healthz")
	if err != nil {
		return h, false
	}
	defer resp.Body.Close()
	return h, json.NewDecoder(resp.Body).Decode(&h) == nil
}

func (s *haServer) role() string {
	h, _ := s.health()
	return h.Scheduler.Role
}

// leads reports whether s leads and is ready: its DAGs loaded, its runs
// recovered.
func (s *haServer) leads() bool {
	h, _ := s.health()
	return h.Scheduler.Role == "leader" && h.Status == "ok"
}

// haTask is what TestHAFailover reads of a task instance.
type haTask struct {
	TaskID    string     `json:"task_id"`
	State     string     `json:"state"`
	TryNumber int        `json:"try_number"`
	QueuedAt  *time.Time `json:"queued_at"`
}

// TestHAFailover runs two `kiln server --ha` and a `kiln worker` on a real
// 3-node NATS cluster: the first server leads, the second stands by and
// forwards the API; a SIGKILL of the leader in the middle of a run has
// the standby dispatching again within the lease TTL + 2 s, and the run
// ends with one try per task, the logs of its tries on the new leader;
// the killed server, its store damaged, started again, follows from the
// snapshot;
// a leader frozen past its lease (SIGSTOP, as cut off) is deposed, the
// requests forwarded to it not holding the takeover up, and exits when it
// wakes, having written nothing more; a server whose host
// rebooted since its store skipped a sync starts from the snapshot; a
// leader stopped with SIGTERM hands over at once; and a server's store refuses changes made
// in it directly.
func TestHAFailover(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	writeFiles(t, dags, map[string]string{"chain.yaml": `
id: chain
tasks:
  - {id: t1, plugin: shell, with: {command: "echo t1 ran; sleep 0.5"}}
  - {id: t2, plugin: shell, depends_on: [t1], with: {command: "echo t2 ran; sleep 0.5"}}
  - {id: t3, plugin: shell, depends_on: [t2], with: {command: "echo t3 ran; sleep 0.5"}}
  - {id: t4, plugin: shell, depends_on: [t3], with: {command: "echo t4 ran; sleep 0.5"}}
  - {id: t5, plugin: shell, depends_on: [t4], with: {command: "echo t5 ran; sleep 0.5"}}
  - {id: t6, plugin: shell, depends_on: [t5], with: {command: "echo t6 ran; sleep 0.5"}}
`})
	const ttl = 5 * time.Second
	start := func(name, addr string) *haServer {
		return &haServer{startKiln(t, "server", "--ha", "--name", name, "--addr", addr, "--advertise", "http://"+addr,
			"--nats", c.URL(), "--dags", dags, "--data", filepath.Join(dir, name), "--lease-ttl", ttl.String()), name, addr}
	}
	s1 := start("s1", freeAddr(t))
	waitFor(t, "s1 to lead", s1.leads)
	s2 := start("s2", freeAddr(t))
	waitFor(t, "s2 to stand by", func() bool { return s2.role() == "standby" })
	startKiln(t, "worker", "--nats", c.URL(), "--name", "w1", "--slots", "4", "--data", filepath.Join(dir, "work"))

	// Through the standby's API, which forwards to the leader.
	api := func(s *haServer) string { return "http://" + s.addr + "/api/v1/dags/chain/runs" }
	waitFor(t, "the DAG to load", func() bool {
		resp, err := http.Get("http://" + s2.addr + "/api/v1/dags/chain")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	first := triggerAt(t, api(s2))
	waitSuccess(t, api(s2)+"/"+first, time.Now().Add(time.Minute))
	waitFor(t, "s2 to apply the leader's log", func() bool {
		h, _ := s2.health()
		l, _ := s1.health()
		return h.Scheduler.Leader == "s1" && h.Scheduler.LogSeq > 0 && h.Scheduler.LogSeq >= l.Scheduler.LogSeq-1 && h.Scheduler.Lag <= 1
	})

	// SIGKILL the leader in the middle of a run.
	run := triggerAt(t, api(s1))
	waitFor(t, "t2 to run", func() bool { return taskState(t, api(s1)+"/"+run, "t2") == "running" })
	killed := time.Now()
	if err := syscall.Kill(-s1.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s1.wait()
	waitFor(t, "s2 to lead", s2.leads)
	took := time.Since(killed)
	waitSuccess(t, api(s2)+"/"+run, time.Now().Add(time.Minute))
	tis := runTasks(t, api(s2)+"/"+run)
	var dispatched time.Time
	for _, ti := range tis {
		if ti.TryNumber != 1 || ti.State != "success" {
			t.Errorf("%s: %s after %d tries, want success after 1", ti.TaskID, ti.State, ti.TryNumber)
		}
		if q := ti.QueuedAt; q != nil && q.After(killed) && (dispatched.IsZero() || q.Before(dispatched)) {
			dispatched = *q
		}
	}
	if dispatched.IsZero() {
		t.Fatal("no task was queued after the kill")
	}
	again := dispatched.Sub(killed)
	t.Logf("leader SIGKILLed: s2 leads after %s, dispatches again after %s (lease TTL %s)", took.Round(10*time.Millisecond), again.Round(10*time.Millisecond), ttl)
	if again > ttl+2*time.Second {
		t.Errorf("the standby dispatched again %s after the kill, want at most the TTL + 2 s", again)
	}

	// The logs of tries that ran under the dead leader are the new one's.
	for _, r := range []string{first, run} {
		if log := apiTaskLog(t, api(s2)+"/"+r, "t1"); !strings.Contains(log, "t1 ran") {
			t.Errorf("the log of t1 of run %s, from the new leader: %q", r, log)
		}
	}

	// The killed server comes back as a standby and catches up, although
	// its store is damaged: it starts from the snapshot.
	db, err := os.OpenFile(filepath.Join(dir, "s1", "kiln.db"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.WriteAt(bytes.Repeat([]byte{0xff}, 8192), 0) // both meta pages
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatalf("damaging s1's store: %v %v", err, cerr)
	}
	s1 = start("s1", s1.addr)
	waitFor(t, "s1 to follow s2", func() bool {
		h, _ := s1.health()
		return h.Scheduler.Role == "standby" && h.Scheduler.Leader == "s2" && h.Scheduler.Lag == 0
	})
	if !strings.Contains(s1.out.String(), "store is damaged: starting from the cluster's latest snapshot") {
		t.Errorf("s1 did not say it replaced its damaged store:\n%s", s1.out.String())
	}

	// A leader frozen past its lease (as if cut off) is deposed: s1 takes
	// over; woken, s2 exits without writing, and the runs go on under s1.
	// A request s1 forwards to the frozen leader, which never answers it,
	// does not hold s1's takeover up: it is cut short.
	if err := syscall.Kill(s2.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	forwarded := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s1.addr + "/api/v1/dags")
		if err == nil {
			resp.Body.Close()
		}
		forwarded <- err
	}()
	waitFor(t, "s1 to lead", s1.leads)
	if took := time.Since(frozen); took > ttl+2*time.Second {
		t.Errorf("s1 led %s after the leader froze, want at most the TTL + 2 s", took)
	}
	select {
	case <-forwarded:
	case <-time.After(5 * time.Second):
		t.Error("a request forwarded to the frozen leader still hangs 5 s after the takeover")
	}
	if err := syscall.Kill(s2.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := s2.wait(); err == nil || !strings.Contains(s2.out.String(), "no longer the leader") {
		t.Fatalf("the deposed leader: %v\n%s", err, s2.out.String())
	}
	third := triggerAt(t, api(s1))
	waitSuccess(t, api(s1)+"/"+third, time.Now().Add(time.Minute))

	// SIGTERM hands the lease over at once. s2 comes back first as if its
	// host had rebooted since its store last skipped a sync: it sets the
	// store aside and starts from the snapshot.
	if err := os.WriteFile(filepath.Join(dir, "s2", "kiln.db.unsynced"), []byte("an-earlier-boot"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 = start("s2", s2.addr)
	waitFor(t, "s2 to stand by", func() bool { return s2.role() == "standby" })
	if !strings.Contains(s2.out.String(), "the host went down while this server's store skipped fsync") {
		t.Errorf("s2 did not distrust its store after a reboot:\n%s", s2.out.String())
	}
	stopped := time.Now()
	if err := s1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "s2 to lead", s2.leads)
	t.Logf("leader stopped with SIGTERM: s2 leads after %s", time.Since(stopped).Round(10*time.Millisecond))
	if err := s1.wait(); err != nil {
		t.Errorf("s1 after SIGTERM: %v", err)
	}
	fourth := triggerAt(t, api(s2))
	waitSuccess(t, api(s2)+"/"+fourth, time.Now().Add(time.Minute))
	for _, r := range []string{first, run, third} {
		if st := runStateAt(t, api(s2)+"/"+r); st != "success" {
			t.Errorf("run %s is %s", r, st)
		}
	}

	// A standby beyond loopback without authentication is refused: it
	// would forward remote requests to a leader that takes them as local.
	_, stderr, code := runKiln(t, "server", "--ha", "--name", "s3", "--addr", "0.0.0.0:0", "--advertise", "http://127.0.0.1:1",
		"--nats", c.URL(), "--dags", dags, "--data", filepath.Join(dir, "s3"), "--lease-ttl", ttl.String())
	if code != 2 || !strings.Contains(stderr, "is not a loopback address") {
		t.Errorf("a standby on 0.0.0.0 without authentication: exit %d, %s", code, stderr)
	}

	// A change made directly in a server's store would not reach the others.
	_, stderr, code = runKiln(t, "tokens", "create", "--name", "ci", "--role", "admin", "--data", filepath.Join(dir, "s1"))
	if code != 2 || !strings.Contains(stderr, "belongs to a server of a cluster") {
		t.Errorf("kiln tokens create --data on a cluster server's store: exit %d, %s", code, stderr)
	}
}

func runTasks(t *testing.T, run string) []haTask {
	t.Helper()
	var tis []haTask
	getJSON(t, run+"/tasks", &tis)
	return tis
}

func apiTaskLog(t *testing.T, run, task string) string {
	t.Helper()
	return getText(t, run+"/tasks/"+task+"/logs")
}

func taskState(t *testing.T, run, task string) string {
	t.Helper()
	for _, ti := range runTasks(t, run) {
		if ti.TaskID == task {
			return ti.State
		}
	}
	return ""
}
