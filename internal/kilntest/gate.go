package kilntest

import (
	"bytes"
	"errors"
	"path/filepath"
	"syscall"
)

// Gate is a named pipe, gates/NAME in the tasks' working folder, that lets
// a test hold tasks running without a sleep: a task waits at it with
//
//	read gate < gates/NAME
//
// which blocks until the test calls Open, and then lets every task through,
// those waiting and those to come. When the test ends, every gate opens,
// so that no task holds up the workers' stop.
type Gate struct {
	k    *Kiln
	path string
	fd   int // -1 until opened; guarded by k.gatesMu
}

// Gate makes the gate NAME, or returns the one made before. Make it before
// a task can reach it: a task that finds no pipe fails.
func (k *Kiln) Gate(name string) *Gate {
	k.t.Helper()
	k.gatesMu.Lock()
	defer k.gatesMu.Unlock()
	if g := k.gates[name]; g != nil {
		return g
	}
	g := &Gate{k: k, path: filepath.Join(k.dir, "gates", name), fd: -1}
	if err := syscall.Mkfifo(g.path, 0o600); err != nil {
		k.t.Fatalf("kilntest: making gate %s: %v", name, err)
	}
	k.gates[name] = g
	return g
}

// Open lets the tasks waiting at the gate go on, and those that come later
// pass.
func (g *Gate) Open() {
	g.k.t.Helper()
	g.k.gatesMu.Lock()
	defer g.k.gatesMu.Unlock()
	if err := g.open(); err != nil {
		g.k.t.Fatalf("kilntest: opening gate %s: %v", filepath.Base(g.path), err)
	}
}

// open holds the pipe open for reading and writing, which never blocks,
// and fills it with newlines: each task reads one.
func (g *Gate) open() error {
	if g.fd >= 0 {
		return nil
	}
	fd, err := syscall.Open(g.path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	g.fd = fd
	lines := bytes.Repeat([]byte{'\n'}, 4096)
	for {
		_, err := syscall.Write(fd, lines)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return nil // full: room for as many tasks as a test starts
		case errors.Is(err, syscall.EINTR):
		case err != nil:
			return err
		}
	}
}

func (k *Kiln) openGates() {
	k.gatesMu.Lock()
	defer k.gatesMu.Unlock()
	for name, g := range k.gates {
		if err := g.open(); err != nil {
			k.t.Errorf("kilntest: opening gate %s: %v", name, err)
		}
	}
}

func (k *Kiln) closeGates() {
	k.gatesMu.Lock()
	defer k.gatesMu.Unlock()
	for _, g := range k.gates {
		if g.fd >= 0 {
			syscall.Close(g.fd)
		}
	}
}
