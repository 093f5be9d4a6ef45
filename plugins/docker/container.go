package docker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// The labels of the containers Kiln starts (docs/plugins.md#docker).
const (
	LabelDAG        = "kiln.dag"
	LabelRun        = "kiln.run"
	LabelTask       = "kiln.task"
	LabelTry        = "kiln.try"
	LabelWorker     = "kiln.worker"
	LabelWorkerHost = "kiln.worker.host"
	LabelWorkerPID  = "kiln.worker.pid"
	LabelRemove     = "kiln.remove"
)

const (
	// apiTimeout bounds the Engine calls made after the task has ended or
	// been cancelled, when the task's context can no longer bound them.
	apiTimeout = 30 * time.Second
	// drainTimeout bounds reading the container's output once it has
	// exited.
	drainTimeout = 2 * time.Second
)

// nameJunk is what a part of a container's name may not hold.
var nameJunk = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// spec is what to create the container with.
type spec struct {
	name   string
	create client.ContainerCreateOptions
}

// containerSpec turns the task into the container to create: the image by
// its ID, so that a tag moved meanwhile changes nothing, the try's working
// directory and $KILN_OUTPUT mounted at the paths they have on the worker,
// and the task's environment without the worker's own.
func containerSpec(p *params, t *sdk.Task, img *image) (*spec, error) {
	env := slices.Clone(t.TaskEnv)
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		env = append(env, k+"="+envString(p.Env[k]))
	}
	workdir := t.WorkDir
	switch {
	case p.Workdir == "":
	case filepath.IsAbs(p.Workdir) || workdir == "":
		workdir = p.Workdir
	default:
		workdir = filepath.Join(workdir, p.Workdir)
	}

	var mounts []mount.Mount
	if t.WorkDir != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: t.WorkDir, Target: t.WorkDir})
	}
	if out := t.Getenv("KILN_OUTPUT"); out != "" {
		if err := touch(out, p.User != ""); err != nil {
			return nil, fmt.Errorf("making $KILN_OUTPUT for the container: %w", err)
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: out, Target: out})
	}
	if p.User != "" && t.WorkDir != "" {
		// The container's user is not the worker's: let it write its
		// working directory, which only this try uses.
		if err := os.Chmod(t.WorkDir, 0o777); err != nil {
			return nil, fmt.Errorf("opening the working directory to user %s: %w", p.User, err)
		}
	}
	for _, m := range p.Mounts {
		mt, err := parseMount(m, t.Getenv("KILN_PROJECT_DIR"))
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, mt)
	}

	labels := map[string]string{
		LabelDAG:        t.Getenv("KILN_DAG_ID"),
		LabelRun:        t.Getenv("KILN_RUN_ID"),
		LabelTask:       t.Getenv("KILN_TASK_ID"),
		LabelTry:        t.Getenv("KILN_TRY_NUMBER"),
		LabelWorker:     t.Getenv("KILN_WORKER"),
		LabelWorkerHost: hostname(),
		LabelWorkerPID:  strconv.Itoa(os.Getppid()),
		LabelRemove:     strconv.FormatBool(p.remove()),
	}
	init := p.init()
	hc := &container.HostConfig{
		Mounts:      mounts,
		NetworkMode: container.NetworkMode(p.Network),
		Init:        &init,
		Resources: container.Resources{
			NanoCPUs:       int64(math.Round(p.cpus * 1e9)),
			Memory:         p.memory,
			DeviceRequests: p.gpus,
		},
	}
	if p.memory > 0 {
		hc.MemorySwap = p.memory // no swap on top: the limit is the limit
	}
	stop := int(math.Ceil(p.stopGrace.Seconds()))
	cfg := &container.Config{
		Image:       img.ID,
		Cmd:         p.cmd,
		Entrypoint:  p.entrypoint,
		Env:         env,
		WorkingDir:  workdir,
		User:        p.User,
		Labels:      labels,
		StopTimeout: &stop,
	}
	name := containerName(labels)
	return &spec{name: name, create: client.ContainerCreateOptions{
		Name: name, Config: cfg, HostConfig: hc, Platform: p.platform,
	}}, nil
}

// containerName names a try's container kiln-DAG.TASK-RUN-TRY-RANDOM, so
// that `docker ps` tells what runs; the random end keeps two workers that
// run the same try by mistake apart.
func containerName(labels map[string]string) string {
	part := func(s string, max int) string {
		s = strings.Trim(nameJunk.ReplaceAllString(s, "-"), "-.")
		return s[:min(len(s), max)]
	}
	return fmt.Sprintf("kiln-%s.%s-%s-%s-%s",
		part(labels[LabelDAG], 40), part(labels[LabelTask], 40), part(labels[LabelRun], 40),
		part(labels[LabelTry], 6), strings.ToLower(rand.Text()[:6]))
}

// run creates the container, streams its output to the task's log while it
// runs, and removes it (unless remove is false) however the try ends.
func run(ctx context.Context, cli *client.Client, s *spec, p *params, t *sdk.Task) (err error) {
	created, err := cli.ContainerCreate(ctx, s.create)
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled while the Engine may have made it anyway.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
			defer cancel()
			_, _ = cli.ContainerRemove(rctx, s.name, client.ContainerRemoveOptions{Force: true})
		}
		return fmt.Errorf("creating the container: %w", err)
	}
	id := created.ID
	for _, w := range created.Warnings {
		t.Logf("kiln: docker: %s", w)
	}
	defer func() {
		if !p.remove() {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		defer cancel()
		if _, rerr := cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && err == nil {
			err = fmt.Errorf("removing container %s: %w", s.name, rerr)
		}
	}()

	att, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("attaching to container %s: %w", s.name, err)
	}
	defer att.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// Frames of stdout and stderr, in the order the Engine got them,
		// each written to the log as it comes.
		_, _ = stdcopy.StdCopy(t.Log, t.Log, att.Reader)
	}()

	// A cancel while it starts is seen below, and stops the container as
	// one that runs: the Engine may have started it already.
	sctx, cancelStart := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	_, err = cli.ContainerStart(sctx, id, client.ContainerStartOptions{})
	cancelStart()
	if err != nil {
		return fmt.Errorf("starting container %s: %w", s.name, err)
	}
	// The wait outlives a cancelled ctx: the exit is still to be learned
	// once the container is stopped.
	wctx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	wait := cli.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})

	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		return fmt.Errorf("waiting for container %s: %w", s.name, err)
	case <-ctx.Done():
		msg := stop(ctx, cli, id, p.stopGrace, wait)
		drain(copied, att)
		return fmt.Errorf("cancelled (%v): %s", context.Cause(ctx), msg)
	}
	drain(copied, att)
	return exitResult(ctx, cli, id, code, p)
}

// stop stops a cancelled try's container: SIGTERM, then SIGKILL after the
// grace, or SIGKILL at once when the plugin is shutting down. It waits
// for the container to exit and says how it ended.
func stop(ctx context.Context, cli *client.Client, id string, grace time.Duration, wait client.ContainerWaitResult) string {
	if errors.Is(context.Cause(ctx), sdk.ErrShutdown) {
		grace = 0
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+apiTimeout)
	defer cancel()
	secs := int(math.Ceil(grace.Seconds()))
	began := time.Now()
	if _, err := cli.ContainerStop(sctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return "stopping the container: " + err.Error()
	}
	select {
	case <-wait.Result:
	case <-wait.Error:
	case <-sctx.Done():
		return "the container did not stop"
	}
	if grace > 0 && time.Since(began) >= grace {
		return fmt.Sprintf("container killed: it did not stop within %s of SIGTERM", grace)
	}
	return "container stopped"
}

// drain waits for the container's output to be copied to the log, then
// lets the connection go.
func drain(copied <-chan struct{}, att client.ContainerAttachResult) {
	select {
	case <-copied:
	case <-time.After(drainTimeout):
		att.Close()
		<-copied
	}
}

// exitResult turns the container's exit into the try's result, naming an
// out-of-memory kill as such rather than as a bare status 137.
func exitResult(ctx context.Context, cli *client.Client, id string, code int64, p *params) error {
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	var oom bool
	var created time.Time
	if res, err := cli.ContainerInspect(ictx, id, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
		oom = res.Container.State.OOMKilled
		created, _ = time.Parse(time.RFC3339Nano, res.Container.Created)
	}
	if !oom && code == 128+9 && p.memory > 0 {
		oom = oomEvent(ictx, cli, id, created)
	}
	switch {
	case oom && p.memory > 0:
		return sdk.ExitCode(int(code), fmt.Errorf("container ran out of memory: OOM-killed at its limit of %s (exit status %d)", units.BytesSize(float64(p.memory)), code))
	case oom:
		return sdk.ExitCode(int(code), fmt.Errorf("container ran out of memory: OOM-killed (exit status %d)", code))
	case code == 0:
		return nil
	case code > 128 && code < 128+65:
		return sdk.ExitCode(int(code), fmt.Errorf("container exited with status %d (killed by %s)", code, unix.SignalName(syscall.Signal(code-128))))
	}
	return sdk.ExitCode(int(code), fmt.Errorf("container exited with status %d", code))
}

// oomWait bounds waiting for an oom event the Engine has not sent yet.
const oomWait = time.Second

// oomEvent reports whether the Engine sent an oom event for the container
// since it was created. A container killed with SIGKILL at its memory limit
// may be reported exited before the Engine marks it OOM-killed: the kernel's
// notice comes apart from the exit, so the event is awaited a moment.
func oomEvent(ctx context.Context, cli *client.Client, id string, since time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, oomWait+apiTimeout)
	defer cancel()
	ev := cli.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(since.Add(-time.Second).Unix(), 10),
		Until:   strconv.FormatInt(time.Now().Add(oomWait).Unix(), 10),
		Filters: make(client.Filters).Add("container", id).Add("event", "oom"),
	})
	select {
	case <-ev.Messages:
		return true
	case <-ev.Err:
		return false
	}
}

// touch makes the $KILN_OUTPUT file, empty, so that it can be mounted as a
// file; open lets any user of the container write it.
func touch(path string, open bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if open {
		return os.Chmod(path, 0o666)
	}
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func envString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}
