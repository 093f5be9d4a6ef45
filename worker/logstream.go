package worker

import (
	"fmt"
	"sync"
	"time"
)

const (
	// logChunk is the most log one event carries.
	logChunk = 64 << 10
	// logFlushEvery is the longest a line of log waits before it is sent.
	logFlushEvery = 50 * time.Millisecond
	// DefaultLogLimit caps the log sent for a try whose assignment sets no
	// limit.
	DefaultLogLimit = 16 << 20
)

// logStream is the io.Writer a try's log goes to. It cuts the log into
// chunks sent through send, a chunk when logChunk bytes are buffered or
// logFlushEvery after the first unsent byte. Past limit bytes it keeps
// counting but drops the data, and Close ends the log with a note saying
// how much was dropped. Its memory is one chunk, whatever the task prints.
type logStream struct {
	limit int64
	// mask, when set, replaces secret values in what the task writes.
	mask *masker
	// send publishes a chunk starting at offset; it may block, which slows
	// the task down. data is reused once send returns.
	send func(offset int64, data []byte)

	mu      sync.Mutex
	buf     []byte
	offset  int64 // bytes sent before buf: buf[0]'s offset in the log
	written int64 // bytes the task wrote
	kept    int64 // bytes of the task's log within the limit
	atLine  bool  // the log so far ends a line
	timer   *time.Timer
	closed  bool
}

func newLogStream(limit int64, send func(offset int64, data []byte)) *logStream {
	if limit <= 0 {
		limit = DefaultLogLimit
	}
	return &logStream{limit: limit, send: send, buf: make([]byte, 0, logChunk), atLine: true}
}

// Write takes what the task printed. It never fails: a log past its limit
// is dropped, not an error.
func (s *logStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written += int64(len(p))
	if s.closed {
		return len(p), nil // a runner writing after it returned
	}
	if room := s.limit - s.kept; room > 0 {
		keep := p[:min(int64(len(p)), room)]
		s.kept += int64(len(keep))
		if s.mask != nil {
			s.mask.write(keep, s.appendLocked)
		} else {
			s.appendLocked(keep)
		}
	}
	return len(p), nil
}

// masking makes the stream write *** in place of the values, the try's
// secrets. It must be called before the first Write.
func (s *logStream) masking(values []string) {
	s.mask = newMasker(values)
}

// note adds a line of Kiln's own to the log. Notes are sent past the
// limit, and are not counted as the task's output.
func (s *logStream) note(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.noteLocked(line)
}

func (s *logStream) noteLocked(line string) {
	if s.mask != nil {
		s.mask.flush(s.appendLocked)
	}
	if !s.atLine {
		line = "\n" + line
	}
	s.appendLocked([]byte(line + "\n"))
}

func (s *logStream) appendLocked(p []byte) {
	if len(p) == 0 {
		return
	}
	s.atLine = p[len(p)-1] == '\n'
	for len(p) > 0 {
		n := min(logChunk-len(s.buf), len(p))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		if len(s.buf) == logChunk {
			s.flushLocked()
		}
	}
	if len(s.buf) > 0 && s.timer == nil {
		s.timer = time.AfterFunc(logFlushEvery, s.timedFlush)
	}
}

func (s *logStream) timedFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if !s.closed {
		s.flushLocked()
	}
}

func (s *logStream) flushLocked() {
	if len(s.buf) == 0 {
		return
	}
	s.send(s.offset, s.buf)
	s.offset += int64(len(s.buf))
	s.buf = s.buf[:0]
}

// Close sends what is left, with a note if the log was cut, and returns
// the bytes sent (the stored log's size) and the bytes the task wrote.
func (s *logStream) Close() (sent, written int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		if s.mask != nil {
			s.mask.flush(s.appendLocked)
		}
		if over := s.written - s.kept; over > 0 {
			s.noteLocked(fmt.Sprintf("[kiln: log truncated: %d bytes over the %d-byte limit were dropped]", over, s.limit))
		}
		s.flushLocked()
		s.closed = true
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
	return s.offset, s.written
}
