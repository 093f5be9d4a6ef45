package store

import (
	"errors"
	"sync"
	"time"
)

// The change feed: once a transaction has committed, the writer publishes
// the runs, task instances, tries and backfills it changed, so that readers
// in the same process (the API's event stream, followed logs) are told of
// changes instead of polling the store. Each change gets the next sequence
// number. The feed keeps the newest feedSize changes in a ring and wakes
// waiting readers by closing a channel, so the writer never waits for a
// reader: a reader that falls more than feedSize changes behind is told it
// lost changes (ErrChangesLost) and re-reads the state it follows.
//
// Sequence numbers start, at Open, from the Unix time in microseconds, so
// that they keep rising across restarts of the process (unless its clock
// goes back or it published more than one change per microsecond of its
// life): a client that resumes after a number handed out by an earlier
// process is told that it lost changes rather than being given the wrong
// ones.

// feedSize is how many changes the feed keeps for readers that lag.
const feedSize = 4096

// maxRead bounds the changes one Read returns, which bounds how long a
// reader holds the lock the writer publishes under.
const maxRead = 256

// ErrChangesLost reports a reader that fell behind the feed: changes it had
// not read are gone from the ring. The reader's cursor has moved on to the
// newest change; it should re-read the state it follows.
var ErrChangesLost = errors.New("changes lost: the reader fell behind the change feed")

// ChangeKind says what a Change is about.
type ChangeKind string

// Change kinds.
const (
	ChangeRun      ChangeKind = "run"
	ChangeTask     ChangeKind = "task" // a task instance
	ChangeTry      ChangeKind = "try"
	ChangeBackfill ChangeKind = "backfill"
)

// Change is one committed write of a run, task instance, try or backfill
// that changed what was stored.
type Change struct {
	// Seq numbers the change; later changes have higher numbers.
	Seq        uint64
	Kind       ChangeKind
	DAGID      string
	RunID      string // run, task and try
	TaskID     string // task and try: the instance key (InstanceKey)
	Try        int    // a task instance's current try; a try's number
	BackfillID string // backfill
	// State is the state written; empty for a deleted run.
	State string
}

// feed is the ring of recent changes. The writer publishes; any number of
// cursors read.
type feed struct {
	mu     sync.Mutex
	ring   []Change
	first  uint64 // sequence number of the first change ever published
	last   uint64 // of the newest; first-1 before any
	wake   chan struct{}
	closed bool
}

// closedChan is returned by Wait when there is something to read already.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func newFeed(now time.Time) *feed {
	first := uint64(now.UnixMicro())
	return &feed{ring: make([]Change, feedSize), first: first, last: first - 1}
}

// publish numbers the changes, adds them to the ring and wakes the readers
// that wait. It costs a lock, a copy per change and, only when a reader
// waits, closing a channel.
func (f *feed) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	for _, c := range changes {
		f.last++
		c.Seq = f.last
		f.ring[f.last%feedSize] = c
	}
	wake := f.wake
	f.wake = nil
	f.mu.Unlock()
	if wake != nil {
		close(wake)
	}
}

// close wakes every reader for good: the store is closed.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

// LastChange returns the sequence number of the newest change published.
// Before any it is one less than the first change's number.
func (s *Store) LastChange() uint64 {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	return s.feed.last
}

// ChangesAfter returns a cursor that reads the changes published after the
// one numbered seq. ChangesAfter(s.LastChange()) reads what comes next.
func (s *Store) ChangesAfter(seq uint64) *ChangeCursor {
	return &ChangeCursor{f: s.feed, seq: seq}
}

// A ChangeCursor reads the change feed from some point on. It is not safe
// for concurrent use; each reader has its own.
type ChangeCursor struct {
	f   *feed
	seq uint64 // the last change read
}

// Seq returns the number of the last change the cursor went past.
func (c *ChangeCursor) Seq() uint64 { return c.seq }

// Read appends to buf the changes after the cursor, oldest first and at
// most a few hundred, moves the cursor past them and returns buf. It does
// not wait: with nothing new it returns buf as it is.
//
// When some of the changes after the cursor have left the ring, or the
// cursor's number was not handed out by this store (a client's number from
// before a restart), Read returns ErrChangesLost and moves the cursor to
// the newest change. Once the store is closed and the cursor has read
// everything, Read returns ErrClosed.
func (c *ChangeCursor) Read(buf []Change) ([]Change, error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	oldest := f.last + 1 - min(f.last+1-f.first, feedSize)
	switch {
	case c.seq == f.last:
		if f.closed {
			return buf, ErrClosed
		}
		return buf, nil
	case c.seq > f.last || c.seq+1 < oldest:
		c.seq = f.last
		return buf, ErrChangesLost
	}
	end := min(f.last, c.seq+maxRead)
	for seq := c.seq + 1; seq <= end; seq++ {
		buf = append(buf, f.ring[seq%feedSize])
	}
	c.seq = end
	return buf, nil
}

// Wait returns a channel that is closed once there is something for Read
// to return: a change after the cursor, lost changes or a closed store. It
// is closed already when there is.
func (c *ChangeCursor) Wait() <-chan struct{} {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.seq != f.last || f.closed {
		return closedChan
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	return f.wake
}
