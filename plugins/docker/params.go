package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/internal/proc"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// Pull policies.
const (
	PullNever   = "never"
	PullMissing = "missing"
	PullAlways  = "always"
)

const (
	// defaultStopGrace is how long a stopped container has between SIGTERM
	// and SIGKILL, as long as a shell task's process group has.
	defaultStopGrace = proc.KillGrace
	// MaxStopGrace bounds stop_grace: a cancelled task's plugin process is
	// killed a little after it.
	MaxStopGrace = host.MaxStopGrace
)

// params are the task's `with` parameters (schema.json), checked.
type params struct {
	Image         string          `json:"image"`
	Command       json.RawMessage `json:"command"`
	Entrypoint    json.RawMessage `json:"entrypoint"`
	Env           map[string]any  `json:"env"`
	Workdir       string          `json:"workdir"`
	User          string          `json:"user"`
	Mounts        []string        `json:"mounts"`
	Network       string          `json:"network"`
	CPUs          *float64        `json:"cpus"`
	Memory        json.RawMessage `json:"memory"`
	GPUs          json.RawMessage `json:"gpus"`
	Pull          string          `json:"pull"`
	Platform      string          `json:"platform"`
	Remove        *bool           `json:"remove"`
	Init          *bool           `json:"init"`
	StopGrace     string          `json:"stop_grace"`
	RequireDigest bool            `json:"require_digest"`

	// Decoded from the above.
	cmd        []string // nil: the image's CMD
	entrypoint []string // nil: the image's ENTRYPOINT; empty: none
	cpus       float64
	memory     int64
	gpus       []container.DeviceRequest
	platform   *ocispec.Platform
	stopGrace  time.Duration
	pinned     bool // the image is given by digest or ID
}

// decodeParams decodes and checks the task's `with`. Everything here is
// checked without a Docker Engine, so a broken task fails before one is
// asked.
func decodeParams(t *sdk.Task) (*params, error) {
	p := &params{}
	if err := t.Decode(p); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*params, error) {
		return nil, fmt.Errorf("invalid parameters: "+format, args...)
	}
	if p.Image == "" {
		return bad("image is required")
	}
	pinned, err := Pinned(p.Image)
	if err != nil {
		return bad("image %q: %v", p.Image, err)
	}
	p.pinned = pinned
	if p.cmd, err = command(p.Command); err != nil {
		return bad("command: %v", err)
	}
	if p.entrypoint, err = entrypoint(p.Entrypoint); err != nil {
		return bad("entrypoint: %v", err)
	}
	for k, v := range p.Env {
		switch v.(type) {
		case string, float64, bool:
		default:
			return bad("env.%s: want a string, number or boolean, got %T", k, v)
		}
	}
	for _, m := range p.Mounts {
		if _, err := parseMount(m, ""); err != nil {
			return bad("mounts: %v", err)
		}
	}
	if p.Network == "" {
		p.Network = "none"
	}
	if c := p.CPUs; c != nil && (*c <= 0 || math.IsInf(*c, 0)) {
		return bad("cpus: want a number above 0, got %v", *c)
	}
	if p.CPUs != nil {
		p.cpus = *p.CPUs
	}
	if p.memory, err = memory(p.Memory); err != nil {
		return bad("memory: %v", err)
	}
	if p.gpus, err = gpus(p.GPUs); err != nil {
		return bad("gpus: %v", err)
	}
	switch p.Pull {
	case "":
		p.Pull = PullMissing
	case PullNever, PullMissing, PullAlways:
	default:
		return bad("pull: want never, missing or always, got %q", p.Pull)
	}
	if p.Platform != "" {
		os, arch, ok := strings.Cut(p.Platform, "/")
		if !ok || os == "" || arch == "" {
			return bad("platform: want OS/ARCH[/VARIANT], such as linux/amd64, got %q", p.Platform)
		}
		arch, variant, _ := strings.Cut(arch, "/")
		p.platform = &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	p.stopGrace = defaultStopGrace
	if p.StopGrace != "" {
		d, err := time.ParseDuration(p.StopGrace)
		if err != nil || d < 0 || d > MaxStopGrace {
			return bad("stop_grace: want a duration from 0s to %s, got %q", MaxStopGrace, p.StopGrace)
		}
		p.stopGrace = d
	}
	return p, nil
}

// remove reports whether the container is removed once the try has ended.
func (p *params) remove() bool { return p.Remove == nil || *p.Remove }

// init reports whether the container runs with an init process.
func (p *params) init() bool { return p.Init == nil || *p.Init }

// imageID is a local image's ID as an image reference.
var imageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Pinned reports whether image names one image for good: by its digest
// (NAME@sha256:…) or by a local image's ID (sha256:…), rather than by a
// tag, which can move. It fails for what is not an image reference.
func Pinned(image string) (bool, error) {
	if imageID.MatchString(image) {
		return true, nil
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false, err
	}
	_, digested := ref.(reference.Digested)
	return digested, nil
}

// command decodes `command`: a list is argv as it is, a string is run by
// the image's shell.
func command(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return nil, errors.New("empty")
		}
		return []string{"/bin/sh", "-c", s}, nil
	}
	var list []any
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("want a string or a list, got %s", raw)
	}
	if len(list) == 0 {
		return nil, errors.New("empty list")
	}
	argv := make([]string, len(list))
	for i, v := range list {
		switch v := v.(type) {
		case string:
			argv[i] = v
		case float64:
			argv[i] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			argv[i] = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("[%d]: want a string, number or boolean, got %T", i, v)
		}
	}
	return argv, nil
}

// entrypoint decodes `entrypoint`: a string is one program, as docker run
// --entrypoint takes it; "" and [] clear the image's.
func entrypoint(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return []string{}, nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings, got %s", raw)
	}
	if list == nil {
		list = []string{}
	}
	return list, nil
}

// memory decodes `memory`: bytes, or a size in docker's binary units.
func memory(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		if n <= 0 {
			return 0, fmt.Errorf("want a size above 0, got %d", n)
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("want a size such as 512m or 2g, got %s", raw)
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 512m or 2g, got %q", s)
	}
	return n, nil
}

// gpus decodes `gpus` into the device request docker run --gpus makes.
func gpus(raw json.RawMessage) ([]container.DeviceRequest, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	req := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	var s string
	var n int
	var ids []string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		if s != "all" {
			return nil, fmt.Errorf("want all, a count or a list of device ids, got %q", s)
		}
		req.Count = -1
	case json.Unmarshal(raw, &n) == nil:
		if n < 1 {
			return nil, fmt.Errorf("want a count of at least 1, got %d", n)
		}
		req.Count = n
	case json.Unmarshal(raw, &ids) == nil:
		if len(ids) == 0 || slices.Contains(ids, "") {
			return nil, errors.New("want device ids, not an empty list or id")
		}
		req.DeviceIDs = ids
	default:
		return nil, fmt.Errorf("want all, a count or a list of device ids, got %s", bytes.TrimSpace(raw))
	}
	return []container.DeviceRequest{req}, nil
}

// volumeName is what a named volume's name may be, as Docker has it.
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// parseMount parses SOURCE:TARGET[:ro|rw]. A relative host path is taken
// from projectDir; with projectDir "" it is only checked.
func parseMount(spec, projectDir string) (mount.Mount, error) {
	parts := strings.Split(spec, ":")
	m := mount.Mount{ReadOnly: true}
	switch len(parts) {
	case 3:
		switch parts[2] {
		case "ro":
		case "rw":
			m.ReadOnly = false
		default:
			return m, fmt.Errorf("%q: the mode is ro or rw, got %q", spec, parts[2])
		}
	case 2:
	default:
		return m, fmt.Errorf("%q: want SOURCE:TARGET[:ro|rw]", spec)
	}
	src, dst := parts[0], parts[1]
	if !path.IsAbs(dst) {
		return m, fmt.Errorf("%q: the target %q is not an absolute path in the container", spec, dst)
	}
	m.Target = path.Clean(dst)
	switch {
	case src == "":
		return m, fmt.Errorf("%q: no source", spec)
	case filepath.IsAbs(src):
		m.Type, m.Source = mount.TypeBind, filepath.Clean(src)
	case strings.HasPrefix(src, "."):
		m.Type, m.Source = mount.TypeBind, filepath.Join(projectDir, src)
		if projectDir == "" {
			m.Source = src
		}
	case volumeName.MatchString(src):
		m.Type, m.Source = mount.TypeVolume, src
	default:
		return m, fmt.Errorf("%q: the source is an absolute path, a path starting with . (from $KILN_PROJECT_DIR) or a volume name, got %q", spec, src)
	}
	return m, nil
}
