//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// logs returns a container's output, its last tail lines ("all" for
// every line), stdout and stderr together.
func (c *cluster) logs(ctx context.Context, id, tail string) (string, error) {
	rc, err := c.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail, Timestamps: true})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.String(), err
	}
	return buf.String(), nil
}

// A report passes a check's failures on to the test and keeps them, so
// that they can be said again after the nodes' logs: CI shows the end of a
// failed run's output, which the logs would otherwise fill.
type report struct {
	*testing.T
	mu     sync.Mutex
	failed []string
}

// reporter is what the checks report their failures to.
type reporter interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
}

func (r *report) keep(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, msg)
}

func (r *report) Error(args ...any) {
	r.Helper()
	r.keep(fmt.Sprint(args...))
	r.T.Error(args...)
}

func (r *report) Errorf(format string, args ...any) {
	r.Helper()
	r.keep(fmt.Sprintf(format, args...))
	r.T.Errorf(format, args...)
}

func (r *report) Fatal(args ...any) {
	r.Helper()
	r.keep(fmt.Sprint(args...))
	r.T.Fatal(args...)
}

// repeat says the failures again.
func (r *report) repeat() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failed) > 0 {
		r.Logf("--- the failures above, again ---\n%s", strings.Join(r.failed, "\n"))
	}
}

// dumpLogs writes the last lines of each node's log to the test's log.
func (c *cluster) dumpLogs(lines int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range c.nodes {
			if !yield(name) {
				return
			}
		}
	})
	c.mu.Unlock()
	for _, name := range names {
		out, err := c.logs(ctx, c.node(name).id, fmt.Sprint(lines))
		if err != nil {
			out += fmt.Sprintf("(reading the log: %v)", err)
		}
		c.t.Logf("--- the last %d log lines of %s ---\n%s", lines, name, out)
	}
}

// remove removes the cluster's containers and its network.
func (c *cluster) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removeLabelled(ctx, c.cli, labelCluster+"="+c.name, func(err error) { c.t.Errorf("cleanup: %v", err) })
}

// removeLabelled removes the containers and networks with the label
// filter label (KEY=VALUE).
func removeLabelled(ctx context.Context, cli *client.Client, label string, fail func(error)) {
	filters := make(client.Filters).Add("label", label)
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		fail(fmt.Errorf("listing the containers of %s: %w", label, err))
	}
	for _, ct := range list.Items {
		if _, err := cli.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			fail(fmt.Errorf("removing container %v: %w", ct.Names, err))
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		fail(fmt.Errorf("listing the networks of %s: %w", label, err))
	}
	for _, n := range nets.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			fail(fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
}

// removeStale removes what runs of the suite that began over staleAfter
// before now left on the Engine: their containers, networks and images.
// It only logs what it cannot remove.
func removeStale(ctx context.Context, cli *client.Client, now time.Time) {
	warn := func(err error) { fmt.Fprintf(os.Stderr, "chaos: removing a stale run: %v\n", err) }
	old := func(labels map[string]string) bool {
		started, err := strconv.ParseInt(labels[labelStarted], 10, 64)
		return err == nil && now.Sub(time.Unix(started, 0)) > staleAfter
	}
	runs := map[string]bool{}
	filters := make(client.Filters).Add("label", labelRun)
	if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters}); err == nil {
		for _, ct := range list.Items {
			if old(ct.Labels) {
				runs[ct.Labels[labelRun]] = true
			}
		}
	}
	if nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters}); err == nil {
		for _, n := range nets.Items {
			if old(n.Labels) {
				runs[n.Labels[labelRun]] = true
			}
		}
	}
	for run := range runs {
		removeLabelled(ctx, cli, labelRun+"="+run, warn)
	}
	if imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: filters}); err == nil {
		for _, img := range imgs.Items {
			if old(img.Labels) {
				if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
					warn(err)
				}
			}
		}
	}
}
