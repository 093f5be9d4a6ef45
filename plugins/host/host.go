// Package host runs Kiln's stage plugins from a worker: it launches each
// plugin as a hashicorp/go-plugin process speaking the Stage protocol over
// gRPC (package plugins/proto), keeps one process per plugin and reuses it
// for every task, and turns a task's Run stream back into its log and
// result.
//
// A plugin process that crashes fails only the tasks it was running at the
// time; the next task relaunches it. A task that is cancelled or times out
// may have left its plugin stuck (a plugin that ignores cancellation, or
// hangs, or prints without end), so its process is retired: later tasks
// get a new one, and the old one is killed as soon as the tasks still
// running on it end.
package host

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/kilnhq/kiln/plugins/internal/proc"
	"github.com/kilnhq/kiln/plugins/proto"
	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// ErrUnknownPlugin is what Config.Command should wrap when asked for a
// plugin it does not know.
var ErrUnknownPlugin = errors.New("unknown plugin")

// ErrClosed is returned by Run and Describe after Close.
var ErrClosed = errors.New("plugin host closed")

// startTimeout bounds a plugin's launch and handshake.
const startTimeout = 30 * time.Second

// MaxStopGrace bounds Config.StopGraces: the longest a plugin may take to
// stop a cancelled task, such as a container given a grace between
// SIGTERM and SIGKILL.
const MaxStopGrace = 30 * time.Second

// retireGrace is how long a retired plugin process lives on once its last
// task has ended, beyond the time a cancelled task of its plugin may take
// to stop (proc.KillGrace, or Config.StopGraces).
const retireGrace = 3 * time.Second

// Config configures a Host.
type Config struct {
	// Command returns the command that starts a plugin process, e.g.
	// exec.Command(kilnExe, "plugin", "shell"). It wraps ErrUnknownPlugin
	// for a name it does not know. Its Env, when set, is the plugin
	// process's environment; tasks get theirs from Request.Env.
	Command func(plugin string) (*exec.Cmd, error)
	// Logger gets go-plugin's and the plugin processes' own log lines, at
	// debug level. Nil discards them.
	Logger *slog.Logger
	// List, when set, names the plugins Command knows, with their versions
	// and executables, for Builds.
	List func() []Executable
	// StopGraces are, for plugins that may take longer than
	// proc.KillGrace to stop a cancelled task, how long they may take, at
	// most MaxStopGrace (plugins.StopGraces). A retired process of theirs
	// lives on that long, so that it can finish stopping its tasks.
	StopGraces map[string]time.Duration
}

// Executable is a plugin a Host can run: its name, its version and the
// executable its process runs (the kiln binary for a built-in one).
type Executable struct {
	Name    string
	Version string
	Path    string
}

// Host launches stage plugins and runs tasks through them. It is safe for
// concurrent use.
type Host struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	plugins map[string]*slot

	hashMu sync.Mutex
	hashes map[fileID]string // SHA-256 of plugin executables
}

// slot holds the current process of one plugin, and the retired ones that
// still run tasks.
type slot struct {
	mu       sync.Mutex // held while (re)launching
	cur      *instance
	draining map[*instance]bool
}

// instance is one launched plugin process.
type instance struct {
	name   string
	client *plugin.Client
	stub   stagepb.StageClient
	stderr *tail
	build  Build
	broken atomic.Bool // the connection failed while the process lived on

	mu       sync.Mutex
	inflight int  // Runs using the process
	retired  bool // takes no new Runs; killed when inflight drops to 0
	// stopGrace is how long a cancelled task of the plugin may take to
	// stop.
	stopGrace time.Duration
	slot      *slot
}

// release ends one Run's use of the process, and kills it if it is retired
// and that was the last.
func (inst *instance) release() {
	inst.mu.Lock()
	inst.inflight--
	last := inst.retired && inst.inflight == 0
	inst.mu.Unlock()
	if last {
		inst.killLater()
	}
}

// retire stops new Runs from using the process; it is killed once the Runs
// still using it end.
func (inst *instance) retire() {
	inst.slot.mu.Lock()
	if inst.slot.cur == inst {
		inst.slot.cur = nil
		inst.slot.draining[inst] = true
	}
	inst.slot.mu.Unlock()
	inst.mu.Lock()
	inst.retired = true
	idle := inst.inflight == 0
	inst.mu.Unlock()
	if idle {
		inst.killLater()
	}
}

// killLater kills a retired process after retireGrace, which leaves the
// plugin time to stop the task it was cancelled for: killed at once, it
// could leave that task's processes behind. The kill is graceful first, so
// a plugin that tracks its tasks' processes stops them as it shuts down.
func (inst *instance) killLater() {
	time.AfterFunc(inst.stopGrace+retireGrace, func() {
		inst.client.Kill()
		inst.slot.mu.Lock()
		delete(inst.slot.draining, inst)
		inst.slot.mu.Unlock()
	})
}

// New returns a Host. Plugins are launched on first use.
func New(cfg Config) *Host {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Host{cfg: cfg, log: l, plugins: make(map[string]*slot), hashes: make(map[fileID]string)}
}

// Close kills every plugin process, and with them the tasks they still run.
// Runs in flight end as crashed or cancelled.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	slots := make([]*slot, 0, len(h.plugins))
	for _, s := range h.plugins {
		slots = append(slots, s)
	}
	h.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			s.mu.Lock() // waits out a launch in progress
			defer s.mu.Unlock()
			if s.cur != nil {
				s.cur.client.Kill()
				s.cur = nil
			}
			for inst := range s.draining {
				inst.client.Kill()
				delete(s.draining, inst)
			}
		})
	}
	wg.Wait()
	return nil
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// instance returns the running process of the named plugin, launching it
// if there is none or the last one died, with one more Run counted as
// using it: the caller must release it.
func (h *Host) instance(name string) (*instance, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	s := h.plugins[name]
	if s == nil {
		s = &slot{draining: make(map[*instance]bool)}
		h.plugins[name] = s
	}
	h.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.cur; cur != nil {
		if !cur.client.Exited() && !cur.broken.Load() {
			cur.mu.Lock()
			cur.inflight++
			cur.mu.Unlock()
			return cur, nil
		}
		h.log.Debug("relaunching plugin", "plugin", name)
		cur.client.Kill()
		s.cur = nil
	}
	if h.isClosed() {
		return nil, ErrClosed
	}
	inst, err := h.launch(name)
	if err != nil {
		return nil, err
	}
	inst.slot, inst.inflight = s, 1
	s.cur = inst
	return inst, nil
}

func (h *Host) launch(name string) (*instance, error) {
	if h.cfg.Command == nil {
		return nil, fmt.Errorf("plugin %s: %w (no Command configured)", name, ErrUnknownPlugin)
	}
	cmd, err := h.cfg.Command(name)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	stderr := newTail()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  proto.Handshake,
		VersionedPlugins: proto.PluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newHCLogger(h.log.With("plugin", name)),
		Stderr:           stderr,
		SyncStderr:       stderr,
		StartTimeout:     startTimeout,
	})
	start := time.Now()
	stub, err := dispense(client)
	if err != nil {
		client.Kill() // also waits until all its stderr is read
		return nil, fmt.Errorf("launching plugin %s: %w: %s", name, err, stderr.crashReport())
	}
	grace := proc.KillGrace
	if g := h.cfg.StopGraces[name]; g > grace {
		grace = min(g, MaxStopGrace)
	}
	inst := &instance{name: name, client: client, stub: stub, stderr: stderr, stopGrace: grace}
	inst.build = h.buildOf(name, cmd.Path, stub)
	h.log.Debug("launched plugin", "plugin", name, "took", time.Since(start))
	return inst, nil
}

func dispense(client *plugin.Client) (stagepb.StageClient, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense(proto.PluginName)
	if err != nil {
		return nil, err
	}
	stub, ok := raw.(stagepb.StageClient)
	if !ok {
		return nil, fmt.Errorf("dispensed %T, not a Stage client", raw)
	}
	return stub, nil
}
