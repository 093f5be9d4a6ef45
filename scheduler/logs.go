package scheduler

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
)

// logStore keeps each try's log in its own file:
// DIR/DAG/RUN/TASK/TRY.log. Workers already cap what they send; the store
// enforces the limit again so a misbehaving worker cannot fill the disk.
type logStore struct {
	dir   string
	limit int64
}

func (l *logStore) path(k wire.TryKey) string {
	return filepath.Join(l.dir, k.DAGID, k.RunID, k.TaskID, strconv.Itoa(k.Try)+".log")
}

// noteSlack leaves room past the limit for the worker's truncation note.
const noteSlack = 4 << 10

// write puts a chunk at its offset; a redelivered chunk lands on itself.
func (l *logStore) write(k wire.TryKey, off int64, data []byte) error {
	if off >= l.limit+noteSlack {
		return nil
	}
	if end := off + int64(len(data)); end > l.limit+noteSlack {
		data = data[:l.limit+noteSlack-off]
	}
	p := l.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(data, off)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// note appends a line from Kiln itself (a template error, a lost worker)
// to a try's log.
func (l *logStore) note(k wire.TryKey, msg string) {
	p := l.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "[kiln %s] %s\n", time.Now().UTC().Format(time.RFC3339), msg)
}

// size is how many bytes a try's log holds.
func (l *logStore) size(k wire.TryKey) int64 {
	st, err := os.Stat(l.path(k))
	if err != nil {
		return 0
	}
	return st.Size()
}
