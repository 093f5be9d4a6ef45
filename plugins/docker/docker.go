// Package docker is the docker stage plugin: it runs a task in a container
// of a pinned image on the worker's Docker Engine, through the Engine's API
// (the docker CLI is not needed), and the container's exit code decides the
// try's outcome (docs/plugins.md#docker).
//
// The image is resolved to a digest when the try starts, as the pull
// policy says, and the container is created from the image's ID: what ran
// is recorded as the try's facts (image, image_digest, image_id, pull),
// which `kiln runs diff` compares. The try's working directory and its
// $KILN_OUTPUT file are mounted at the paths they have on the worker, so
// inputs, artifacts and outputs work as for any task. The container's
// stdout and stderr are streamed to the task log as it prints. A cancelled
// or timed-out try stops its container (SIGTERM, then SIGKILL after
// stop_grace) and removes it; containers are labelled by DAG, run, task,
// try and worker, and a worker that starts removes those its dead
// predecessors left (SweepOrphans).
package docker

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "docker"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// RequireDigestEnv, set to 1 in a worker's environment (kiln worker
// --require-image-digest), makes every docker task of that worker refuse
// an image given by tag.
const RequireDigestEnv = "KILN_DOCKER_REQUIRE_DIGEST"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the docker stage. Create it with New.
type Stage struct {
	mu  sync.Mutex
	eng *Engine
}

var _ sdk.Stage = (*Stage)(nil)

// New returns the docker stage; it connects to the Engine on first use.
func New() *Stage { return &Stage{} }

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin docker`).
func Main() { sdk.Main(New()) }

// Info describes the plugin.
func (*Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema}
}

// Run runs the task's container to its end.
func (s *Stage) Run(ctx context.Context, t *sdk.Task) error {
	p, err := decodeParams(t)
	if err != nil {
		return err
	}
	if os.Getenv(RequireDigestEnv) == "1" {
		p.RequireDigest = true
	}
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	t.SetFact("image", p.Image)
	t.SetFact("pull", p.Pull)
	t.SetFact("docker_version", eng.Version())
	img, err := resolveImage(ctx, eng.Client(), p, t)
	if err != nil {
		return err
	}
	t.SetFact("image_digest", img.Digest)
	t.SetFact("image_id", img.ID)
	t.SetFact("image_platform", img.Platform)

	sp, err := containerSpec(p, t, img)
	if err != nil {
		return err
	}
	t.Logf("kiln: image: %s (%s)", p.Image, img.Digest)
	// Each further line of a command of several is prefixed "kiln: > ",
	// as the shell stage logs it.
	t.Logf("kiln: running in container %s: %s", sp.name, strings.ReplaceAll(strings.TrimRight(describe(p), "\n"), "\n", "\nkiln: > "))
	return run(ctx, eng.Client(), sp, p, t)
}

// engine returns the plugin process's Engine, connecting on first use; a
// failed check is tried again by the next task.
func (s *Stage) engine(ctx context.Context) (*Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		eng, err := NewEngine()
		if err != nil {
			return nil, err
		}
		s.eng = eng
	}
	if err := s.eng.Check(ctx); err != nil {
		return nil, err
	}
	return s.eng, nil
}

// describe is what the container runs, for the log: a string command as
// it was written, else the program and its arguments.
func describe(p *params) string {
	var line string
	if json.Unmarshal(p.Command, &line) == nil {
		return line
	}
	argv := append(slices.Clone(p.entrypoint), p.cmd...)
	if len(argv) == 0 {
		return "the image's entrypoint and command"
	}
	return fmt.Sprintf("%q", argv)
}
