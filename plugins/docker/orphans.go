package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Orphan is a container SweepOrphans removed, or stopped when its task
// asked to keep it.
type Orphan struct {
	Name   string
	Worker string
	Try    string // DAG/RUN/TASK#TRY
	Kept   bool   // stopped, not removed (remove: false)
}

// SweepOrphans removes the containers that dead workers left behind on
// the Engine: those of workers of the given names, which are this
// process's, so any of their containers is from a process before it; and
// those of a worker of this host whose process is gone. A container of a task with
// remove: false is stopped, not removed. The plugin process of a worker
// that dies removes its containers itself; this is for when it died too.
func SweepOrphans(ctx context.Context, e *Engine, workers ...string) ([]Orphan, error) {
	if err := e.Check(ctx); err != nil {
		return nil, err
	}
	cli := e.Client()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelWorker),
	})
	if err != nil {
		return nil, fmt.Errorf("listing kiln's containers: %w", err)
	}
	host := hostname()
	var out []Orphan
	var errs []error
	for _, c := range list.Items {
		if !orphaned(c.Labels, workers, host) {
			continue
		}
		o := Orphan{Worker: c.Labels[LabelWorker], Kept: c.Labels[LabelRemove] == "false",
			Try: fmt.Sprintf("%s/%s/%s#%s", c.Labels[LabelDAG], c.Labels[LabelRun], c.Labels[LabelTask], c.Labels[LabelTry])}
		if len(c.Names) > 0 {
			o.Name = c.Names[0][1:] // "/name"
		}
		switch {
		case o.Kept && c.State != container.StateRunning:
			continue
		case o.Kept:
			zero := 0
			_, err = cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &zero})
		default:
			_, err = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s of %s: %w", o.Name, o.Try, err))
			continue
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// orphaned reports whether a container with these labels belongs to a
// dead worker: one of workers (this process's, started anew), or one on
// this host whose process is gone.
func orphaned(labels map[string]string, workers []string, host string) bool {
	if w := labels[LabelWorker]; w != "" && slices.Contains(workers, w) {
		return true
	}
	if host == "" || labels[LabelWorkerHost] != host {
		return false
	}
	pid, err := strconv.Atoi(labels[LabelWorkerPID])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
