package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/dockerimage"
	"github.com/kilnhq/kiln/internal/dockertest"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// waitForLog waits until the task's log holds s.
func waitForLog(t *testing.T, log *plugintest.LogBuffer, s string) {
	t.Helper()
	plugintest.WaitFor(t, fmt.Sprintf("%q in the log", s), time.Minute, func() bool { return strings.Contains(log.String(), s) })
}

// try is one try of a docker task, as a worker would hand it to the
// plugin, in a DAG of its own, whose containers the test removes at its
// end whatever happens.
type try struct {
	*sdk.Task
	log *plugintest.LogBuffer
	dag string
	out string
}

func newTry(t testing.TB, eng *docker.Engine, with map[string]any) *try {
	t.Helper()
	raw, err := json.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	dag := "dockertest-" + strings.ToLower(rand.Text()[:8])
	dockertest.RemoveContainers(t, eng, docker.LabelDAG, dag)
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "kiln-output")
	taskEnv := []string{
		"KILN_DAG_ID=" + dag, "KILN_RUN_ID=manual__2026-12-05T10:00:00Z", "KILN_TASK_ID=step", "KILN_TRY_NUMBER=1",
		"KILN_WORKER=test-worker", "KILN_OUTPUT=" + out, "KILN_WORKDIR=" + dir, "KILN_PROJECT_DIR=" + t.TempDir(),
	}
	log := &plugintest.LogBuffer{}
	return &try{
		Task: &sdk.Task{With: raw, Env: append(os.Environ(), taskEnv...), TaskEnv: taskEnv, WorkDir: dir, Try: dag + "/run/step#1", Log: log},
		log:  log, dag: dag, out: out,
	}
}

func (tr *try) run(t testing.TB) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return docker.New().Run(ctx, tr.Task)
}

func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestRunStreamsTheLogAndRecordsTheImage(t *testing.T) {
	eng := dockertest.Engine(t)
	// A tag of its own, which no other test moves meanwhile.
	tag := "kiln-test/streams:" + strings.ToLower(rand.Text()[:8])
	id := dockertest.Image(t, eng, tag, map[string]dockerimage.File{"etc/marker": {Data: []byte(tag)}})
	tr := newTry(t, eng, map[string]any{
		"image":   tag,
		"command": `echo first; echo to-stderr >&2; while [ ! -e go ]; do sleep 0.05; done; echo second; echo rows=42 >> "$KILN_OUTPUT"; echo made > made.txt; exit 3`,
	})
	done := make(chan error, 1)
	go func() { done <- tr.run(t) }()

	// The container waits for a file this test makes only once the first
	// line has reached the log: the log streams while the container runs.
	waitForLog(t, tr.log, "first\n")
	waitForLog(t, tr.log, "to-stderr\n")
	// The Engine may still call it created while its start returns.
	if live := dockertest.Containers(t, eng, docker.LabelDAG, tr.dag); len(live) != 1 || live[0].State != "running" && live[0].State != "created" {
		t.Fatalf("while the log streams, want one live container, got %+v", live)
	}
	if err := os.WriteFile(filepath.Join(tr.WorkDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if exitCode(err) != 3 || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("want exit status 3, got %v", err)
	}
	if !strings.Contains(tr.log.String(), "second\n") {
		t.Errorf("log lacks the last line:\n%s", tr.log)
	}
	if b, _ := os.ReadFile(tr.out); string(b) != "rows=42\n" {
		t.Errorf("$KILN_OUTPUT holds %q, want rows=42", b)
	}
	if b, _ := os.ReadFile(filepath.Join(tr.WorkDir, "made.txt")); string(b) != "made\n" {
		t.Errorf("the working directory's made.txt holds %q", b)
	}
	if left := dockertest.Containers(t, eng, docker.LabelDAG, tr.dag); len(left) != 0 {
		t.Errorf("the container was not removed: %+v", left)
	}
	facts := tr.Facts()
	for k, want := range map[string]string{"image": tag, "image_id": id, "image_digest": id, "pull": "missing", "image_platform": "linux/amd64"} {
		if facts[k] != want {
			t.Errorf("fact %s = %q, want %q (all: %v)", k, facts[k], want, facts)
		}
	}
	if facts["docker_version"] == "" {
		t.Errorf("no docker_version fact: %v", facts)
	}
}

func TestRunGivesTheContainerOnlyTheTasksEnvironment(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	tr := newTry(t, eng, map[string]any{
		"image":   dockertest.BusyboxTag,
		"command": []any{"sh", "-c", `echo "home=$HOME dag=$KILN_DAG_ID extra=$EXTRA n=$N pwd=$(pwd) user=$(id -u)"`},
		"env":     map[string]any{"EXTRA": "x y", "N": 1000000},
		"user":    "65534",
	})
	if err := tr.run(t); err != nil {
		t.Fatalf("%v\n%s", err, tr.log)
	}
	want := fmt.Sprintf("home=/nonexistent dag=%s extra=x y n=1000000 pwd=%s user=65534\n", tr.dag, tr.WorkDir)
	if !strings.Contains(tr.log.String(), want) {
		t.Errorf("want %q in the log:\n%s", want, tr.log)
	}
}

func TestPullNeverFailsAtOnceNamingTheImage(t *testing.T) {
	eng := dockertest.Engine(t)
	tr := newTry(t, eng, map[string]any{"image": "kiln-test/no-such-image:1", "pull": "never", "command": "true"})
	start := time.Now()
	err := tr.run(t)
	if err == nil || !strings.Contains(err.Error(), "kiln-test/no-such-image:1 is not on the Docker host, and pull is never") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s to fail", took)
	}
}

func TestRequireDigestRefusesATag(t *testing.T) {
	eng := dockertest.Engine(t)
	id := dockertest.Busybox(t, eng)
	tr := newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "require_digest": true, "command": "true"})
	if err := tr.run(t); err == nil || !strings.Contains(err.Error(), "is given by tag, and digests are required") {
		t.Fatalf("a tag with require_digest: got %v", err)
	}
	tr = newTry(t, eng, map[string]any{"image": id, "require_digest": true, "command": "true", "pull": "never"})
	if err := tr.run(t); err != nil {
		t.Fatalf("the image's ID with require_digest: %v\n%s", err, tr.log)
	}
	if got := tr.Facts()["image_digest"]; got != id {
		t.Errorf("image_digest = %q, want %q", got, id)
	}
}

func TestOutOfMemoryIsNamed(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	// dd reads into one buffer of bs bytes: 64 MiB does not fit in 8.
	tr := newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "memory": "8m", "command": "dd if=/dev/zero of=/dev/null bs=64M count=1"})
	err := tr.run(t)
	if err == nil || !strings.Contains(err.Error(), "container ran out of memory: OOM-killed at its limit of 8MiB") {
		t.Fatalf("got %v\n%s", err, tr.log)
	}
	if exitCode(err) != 137 {
		t.Errorf("exit code %d, want 137", exitCode(err))
	}
}

func TestNetworkNoneCannotReachTheHost(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "reached") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	fetch := fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s %s`, host, port)

	// The host's network reaches the server, so the command works...
	tr := newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "network": "host", "command": fetch})
	if err := tr.run(t); err != nil || !strings.Contains(tr.log.String(), "reached") {
		t.Fatalf("network host: %v\n%s", err, tr.log)
	}
	// ...and without one, the default, it cannot.
	tr = newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "command": fetch})
	if err := tr.run(t); err == nil || strings.Contains(tr.log.String(), "reached") {
		t.Fatalf("network none reached the host's server: %v\n%s", err, tr.log)
	}
}

func TestCancelStopsAndRemovesTheContainer(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	tr := newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "command": "echo started; sleep 600"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- docker.New().Run(ctx, tr.Task) }()
	waitForLog(t, tr.log, "started\n")
	start := time.Now()
	cancel()
	err := <-done
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "container stopped") {
		t.Fatalf("got %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("stopping and removing took %s, want at most 2s", took)
	}
	if left := dockertest.Containers(t, eng, docker.LabelDAG, tr.dag); len(left) != 0 {
		t.Errorf("the container was not removed: %+v", left)
	}
}

func TestKeptContainerStaysAfterTheTry(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	tr := newTry(t, eng, map[string]any{"image": dockertest.BusyboxTag, "command": "true", "remove": false})
	if err := tr.run(t); err != nil {
		t.Fatal(err)
	}
	left := dockertest.Containers(t, eng, docker.LabelDAG, tr.dag)
	if len(left) != 1 || left[0].State != "exited" {
		t.Fatalf("want the exited container kept, got %+v", left)
	}
	if !strings.HasPrefix(left[0].Names[0], "/kiln-"+tr.dag+".step-manual__2026-12-05T10-00-00Z-1-") {
		t.Errorf("container named %s", left[0].Names[0])
	}
}

func TestNoEngineSaysSo(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	err := docker.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no Docker Engine answers at unix://") {
		t.Fatalf("got %v", err)
	}
	tr := &sdk.Task{With: []byte(`{"image": "busybox", "command": "true"}`), Log: &plugintest.LogBuffer{}}
	if err := docker.New().Run(context.Background(), tr); err == nil || !strings.Contains(err.Error(), "no Docker Engine answers") {
		t.Fatalf("a try: got %v", err)
	}
}
