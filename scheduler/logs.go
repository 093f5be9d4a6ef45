package scheduler

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/internal/wire"
)

// logStore keeps each try's log in its own file:
// DIR/DAG/RUN/TASK/TRY.log. Workers already cap what they send; the store
// enforces the limit again so a misbehaving worker cannot fill the disk.
//
// Chunks from workers are written at their offsets, so a redelivered chunk
// lands on itself. A note of Kiln's is appended; once a try has one while
// its worker may still send chunks (a cancel, a timeout, a lost
// heartbeat), the note occupies offsets the worker will use, so the try's
// later chunks are appended after it instead, skipping what was already
// written. write runs on the events goroutine, note on the loop's and
// the sender's: io keeps their file writes apart, and mu, held for no
// I/O, guards which tries have a note, so that the loop's release, finished
// and sweep never wait for a file.
//
// Such an entry lives as long as the try is in flight, and after it ends
// until the worker's finished event says the log is complete or, for a
// worker that never sends one (gone silent, or a lost callback), until the
// deadline release gives it.
type logStore struct {
	dir   string
	limit int64
	// mirror, in cluster mode, is told each write as it landed in the
	// file, for the standbys' copies (mirror.go).
	mirror func(k wire.TryKey, off int64, data []byte, at time.Time)

	io sync.Mutex
	mu sync.Mutex
	// workerEnd holds, for each try with a note and a worker that may
	// still be sending, how far the worker's own log reached.
	workerEnd map[wire.TryKey]*noted
}

type noted struct {
	end   int64     // where the worker's own log reached
	until time.Time // zero while the try is in flight
}

func (l *logStore) path(k wire.TryKey) string {
	return filepath.Join(l.dir, k.DAGID, k.RunID, k.TaskID, strconv.Itoa(k.Try)+".log")
}

// noteSlack leaves room past the limit for the worker's truncation note.
const noteSlack = 4 << 10

// write puts a worker's chunk, received at now, at its offset, or after a
// note of Kiln's, and records when it came (internal/logtimes).
func (l *logStore) write(k wire.TryKey, off int64, data []byte, now time.Time) error {
	if off >= l.limit+noteSlack {
		return nil
	}
	if end := off + int64(len(data)); end > l.limit+noteSlack {
		data = data[:l.limit+noteSlack-off]
	}
	l.io.Lock()
	defer l.io.Unlock()
	flags, at := os.O_WRONLY|os.O_CREATE, off
	l.mu.Lock()
	if n := l.workerEnd[k]; n != nil {
		if off+int64(len(data)) <= n.end {
			l.mu.Unlock()
			return nil // written before the note
		}
		data = data[max(0, n.end-off):]
		n.end = off + int64(len(data))
		flags, at = flags|os.O_APPEND, -1
	}
	l.mu.Unlock()
	p := l.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		return err
	}
	// The time goes first, so that a reader that sees the data has its
	// time too.
	appending := at < 0
	var werr error
	if appending {
		var st os.FileInfo
		if st, werr = f.Stat(); werr == nil {
			at = st.Size()
		}
	}
	if werr == nil {
		werr = logtimes.Append(p, at, now)
	}
	if werr != nil {
		f.Close()
		return werr
	}
	if appending {
		_, werr = f.Write(data)
	} else {
		_, werr = f.WriteAt(data, at)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil && l.mirror != nil {
		l.mirror(k, at, data, now)
	}
	return werr
}

// note appends a line from Kiln itself (a lost worker, a cancel) to the log
// of a try whose worker may still send chunks, which then follow the note.
func (l *logStore) note(k wire.TryKey, msg string) error { return l.appendNote(k, msg, true) }

// noteIdle appends a line from Kiln itself (a template error, a
// dag_sensor's poke, a sensor's timeout) to the log of a try that no
// worker is running.
func (l *logStore) noteIdle(k wire.TryKey, msg string) error { return l.appendNote(k, msg, false) }

func (l *logStore) appendNote(k wire.TryKey, msg string, workerMaySend bool) error {
	l.io.Lock()
	defer l.io.Unlock()
	if workerMaySend {
		end := l.size(k)
		l.mu.Lock()
		if l.workerEnd[k] == nil {
			if l.workerEnd == nil {
				l.workerEnd = make(map[wire.TryKey]*noted)
			}
			l.workerEnd[k] = &noted{end: end}
		}
		l.mu.Unlock()
	}
	p := l.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	now := time.Now()
	st, err := f.Stat()
	if err == nil {
		err = logtimes.Append(p, st.Size(), now)
	}
	if err != nil {
		f.Close()
		return err
	}
	line := fmt.Appendf(nil, "[kiln %s] %s\n", now.UTC().Format(time.RFC3339), msg)
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && l.mirror != nil {
		l.mirror(k, st.Size(), line, now)
	}
	return err
}

// finished forgets a try whose worker has sent its whole log.
func (l *logStore) finished(k wire.TryKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.workerEnd, k)
}

// release says that a try has ended: its worker's last chunks, if any are
// still on their way, are taken until the deadline.
func (l *logStore) release(k wire.TryKey, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.workerEnd[k]; n != nil {
		n.until = until
	}
}

// sweep forgets the tries released before now.
func (l *logStore) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, n := range l.workerEnd {
		if !n.until.IsZero() && now.After(n.until) {
			delete(l.workerEnd, k)
		}
	}
}

// size is how many bytes a try's log holds.
func (l *logStore) size(k wire.TryKey) int64 {
	st, err := os.Stat(l.path(k))
	if err != nil {
		return 0
	}
	return st.Size()
}

// note writes a note of Kiln's to the log of a try whose worker may still
// send chunks; a note that cannot be written is logged, since the try's
// state goes on regardless.
func (s *Scheduler) note(k wire.TryKey, msg string) {
	if err := s.logs.note(k, msg); err != nil {
		s.log.Warn("writing a note to a try's log", "try", k.String(), "note", msg, "err", err)
	}
}

// noteIdle is note for a try that no worker is running.
func (s *Scheduler) noteIdle(k wire.TryKey, msg string) {
	if err := s.logs.noteIdle(k, msg); err != nil {
		s.log.Warn("writing a note to a try's log", "try", k.String(), "note", msg, "err", err)
	}
}
