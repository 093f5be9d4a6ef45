//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/kilnhq/kiln/internal/dockerimage"
	"github.com/kilnhq/kiln/plugins/docker"
)

// The labels of everything the suite creates on the Engine: the image, the
// network and the containers. A run removes what has its own run label; a
// later run also removes what a run older than staleAfter left, such as
// one the test's -timeout killed before its cleanups ran.
const (
	labelRun     = "kiln.chaos"         // the run's id
	labelStarted = "kiln.chaos.started" // when the run began, in Unix seconds
	labelNode    = "kiln.chaos.node"    // the node: n1, s2, w3
)

// staleAfter is twice make chaos's -timeout: no run lasts that long.
const staleAfter = 20 * time.Minute

// suite is what the tests of one process share: the Engine, the
// binaries built once and the image made of them.
type suite struct {
	eng     *docker.Engine
	runID   string // random, in the names and labels of what the run creates
	started time.Time
	binDir  string // holds kiln and nats-server, built for the containers
	image   string // kiln-chaos:RUNID
}

var (
	shared     *suite
	sharedOnce sync.Once
	sharedErr  error
)

// TestMain removes the suite's image and binaries once every test ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// theSuite builds the binaries and the image, once per test process, and
// fails the test if it cannot: make chaos asks for the suite, so no Engine
// is a failure, not a skip.
func theSuite(t *testing.T) *suite {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = newSuite() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func newSuite() (*suite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng, err := docker.NewEngine()
	if err == nil {
		err = eng.Check(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("the chaos suite needs a Docker Engine: %w", err)
	}
	s := &suite{eng: eng, runID: strings.ToLower(rand.Text()[:8]), started: time.Now()}
	s.image = "kiln-chaos:" + s.runID
	removeStale(ctx, eng.Client(), s.started)

	busybox, err := dockerimage.Busybox(dockerimage.BusyboxPath)
	if err != nil {
		return nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if s.binDir, err = os.MkdirTemp("", "kiln-chaos-bin-"); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := buildBinaries(ctx, root, s.binDir); err != nil {
		s.close()
		return nil, err
	}
	builtBins := time.Since(began)
	began = time.Now()
	if err := s.buildImage(ctx, busybox); err != nil {
		s.close()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "chaos: binaries built in %v, image %s in %v\n", builtBins.Round(100*time.Millisecond), s.image, time.Since(began).Round(100*time.Millisecond))
	return s, nil
}

// close removes the image and the binaries.
func (s *suite) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.eng.Client().ImageRemove(ctx, s.image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		fmt.Fprintf(os.Stderr, "chaos: removing image %s: %v\n", s.image, err)
	}
	if s.binDir != "" {
		os.RemoveAll(s.binDir)
	}
	s.eng.Close()
}

// labels are the labels of everything the run creates.
func (s *suite) labels(node string) map[string]string {
	l := map[string]string{labelRun: s.runID, labelStarted: strconv.FormatInt(s.started.Unix(), 10)}
	if node != "" {
		l[labelNode] = node
	}
	return l
}

// repoRoot finds the module's root from the test's working directory, its
// package folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(mod, []byte("module github.com/kilnhq/kiln\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/kilnhq/kiln above the working directory")
		}
		dir = parent
	}
}

// buildBinaries builds kiln and nats-server into dir, static (CGO off) so
// that they run in an image FROM scratch. nats-server is a dependency of
// the module, so it builds from the module cache.
func buildBinaries(ctx context.Context, root, dir string) error {
	for _, b := range []struct{ out, pkg string }{
		{"kiln", "./cmd/kiln"},
		{"nats-server", "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// buildImage builds the one image of every node: /kiln, /nats-server, a
// static busybox for the shell tasks, the workload in /dags, and empty
// /data and /tmp.
func (s *suite) buildImage(ctx context.Context, busybox []byte) error {
	files := dockerimage.BusyboxFiles(busybox)
	for _, name := range []string{"kiln", "nats-server"} {
		data, err := os.ReadFile(filepath.Join(s.binDir, name))
		if err != nil {
			return err
		}
		files[name] = dockerimage.File{Data: data, Mode: 0o755}
	}
	dag, err := os.ReadFile(filepath.Join("testdata", "dags", workloadDAG+".yaml"))
	if err != nil {
		return err
	}
	files["dags/"+workloadDAG+".yaml"] = dockerimage.File{Data: dag}
	var label strings.Builder
	for k, v := range s.labels("") {
		fmt.Fprintf(&label, " %s=%q", k, v)
	}
	_, err = dockerimage.Build(ctx, s.eng.Client(), s.image, files,
		`RUN ["/bin/busybox", "sh", "-c", "mkdir -p /data && mkdir -p -m 1777 /tmp"]`,
		"LABEL"+label.String())
	return err
}
