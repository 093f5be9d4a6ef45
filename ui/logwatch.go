package ui

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// A followed log learns that its file grew from fsnotify: the scheduler
// writes logs on the host the server runs on. Watching a folder reports
// the writes to the files in it, and a folder can be watched before the
// file exists; inotify instances are few (128 a user by default) while
// watches are many, so one watcher serves every stream of a Server.

// folderWatch pokes the streams that watch a folder when something in it
// changes. Its fsnotify watcher exists while some folder is watched, and a
// folder is watched while some stream needs it. The zero value is ready.
type folderWatch struct {
	// op serialises the calls into the watcher, and is never held by its
	// event loop: fsnotify may wait for the loop while it holds its own
	// lock.
	op   sync.Mutex
	w    *fsnotify.Watcher // nil while no folder is watched
	done chan struct{}     // closed when w's event loop has ended

	mu   sync.Mutex // guards subs; the event loop takes it
	subs map[string]map[chan struct{}]bool
}

// watch pokes c (without blocking: give it room for one value) whenever
// something in dir changes, until the returned function is called.
func (fw *folderWatch) watch(dir string, c chan struct{}) (stop func(), err error) {
	fw.op.Lock()
	defer fw.op.Unlock()
	if fw.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, err
		}
		fw.w, fw.done = w, make(chan struct{})
		go fw.loop(w, fw.done)
	}
	fw.mu.Lock()
	watched := fw.subs[dir] != nil
	fw.mu.Unlock()
	if !watched {
		if err := fw.w.Add(dir); err != nil {
			fw.closeIfIdle()
			return nil, err
		}
	}
	fw.mu.Lock()
	if fw.subs == nil {
		fw.subs = map[string]map[chan struct{}]bool{}
	}
	if fw.subs[dir] == nil {
		fw.subs[dir] = map[chan struct{}]bool{}
	}
	fw.subs[dir][c] = true
	fw.mu.Unlock()
	return func() { fw.unwatch(dir, c) }, nil
}

func (fw *folderWatch) unwatch(dir string, c chan struct{}) {
	fw.op.Lock()
	defer fw.op.Unlock()
	fw.mu.Lock()
	delete(fw.subs[dir], c)
	last := len(fw.subs[dir]) == 0
	if last {
		delete(fw.subs, dir)
	}
	fw.mu.Unlock()
	if last {
		// Fails when the folder is gone, and its watch with it.
		fw.w.Remove(dir)
		fw.closeIfIdle()
	}
}

// closeIfIdle closes the watcher when no folder is watched; fw.op is held.
func (fw *folderWatch) closeIfIdle() {
	fw.mu.Lock()
	idle := len(fw.subs) == 0
	fw.mu.Unlock()
	if !idle {
		return
	}
	fw.w.Close()
	<-fw.done
	fw.w, fw.done = nil, nil
}

// loop pokes the watchers of the folder of each event. When the kernel's
// queue overflowed, events are lost: every watcher is poked.
func (fw *folderWatch) loop(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			fw.poke(filepath.Dir(ev.Name))
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			fw.poke("")
		}
	}
}

// poke pokes the watchers of dir, or all of them for "".
func (fw *folderWatch) poke(dir string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for d, subs := range fw.subs {
		if dir != "" && d != dir {
			continue
		}
		for c := range subs {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// logWatch pokes C when a log file may have grown. It watches the file's
// folder or, while that does not exist yet, the nearest folder above it
// that does, and moves down as folders appear (update). When no folder
// can be watched C stays quiet, and the stream's fallback poll is all
// there is.
type logWatch struct {
	C chan struct{}

	fw   *folderWatch
	path string
	dir  string // the folder watched; "" for none
	stop func()
}

func (fw *folderWatch) watchLog(path string) *logWatch {
	lw := &logWatch{C: make(chan struct{}, 1), fw: fw, path: path}
	lw.update()
	return lw
}

// update moves the watch to the deepest folder on the file's path that
// exists. Call it after C fires, and read the file after it: a folder
// that appeared before its watch began is found by looking again.
func (lw *logWatch) update() {
	for {
		dir := deepestFolder(filepath.Dir(lw.path))
		if dir == lw.dir {
			return
		}
		stop, err := lw.fw.watch(dir, lw.C)
		if err != nil {
			return
		}
		if lw.stop != nil {
			lw.stop()
		}
		lw.dir, lw.stop = dir, stop
	}
}

func (lw *logWatch) close() {
	if lw.stop != nil {
		lw.stop()
	}
}

// deepestFolder returns dir if it is a folder, else the nearest folder
// above it.
func deepestFolder(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}
