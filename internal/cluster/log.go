package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrDeposed is returned by Append once this server no longer leads:
// another server appended to the log, or the lease is no longer surely
// held. The server must stop scheduling.
var ErrDeposed = errors.New("no longer the leader")

// maxPart is the most bytes of a record one log message carries, below
// NATS's default 1 MiB payload limit; a larger record (a mapped task's
// thousands of instances) takes several messages.
const maxPart = 512 << 10

// appendTimeout bounds one message's append: a leader that cannot reach a
// quorum of the log's servers for that long stops instead of waiting.
const appendTimeout = 5 * time.Second

// A Log appends the leader's records to KILN_LOG. Each message is
// published with the sequence of the log's last message as expected, so
// that an append fails once anyone else appended: a deposed leader cannot
// write past its successor. It implements store.Log.
type Log struct {
	js     jetstream.JetStream
	leader string
	term   uint64
	// until is when the lease stops being surely held (Lease.ValidUntil).
	until func() time.Time

	mu    sync.Mutex
	last  uint64 // the log's last sequence, as this leader appended it
	bytes uint64 // what this leader appended, compressed
}

// NewLog returns the log of the leader named leader in term, whose first
// append expects last as the log's last sequence. until says when the
// lease stops being surely held: no append starts after it, and none
// waits past it.
func NewLog(js jetstream.JetStream, leader string, term, last uint64, until func() time.Time) *Log {
	return &Log{js: js, leader: leader, term: term, last: last, until: until}
}

// Last returns the log's last sequence as this leader knows it.
func (l *Log) Last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Bytes returns how many bytes of records this leader appended, as
// compressed.
func (l *Log) Bytes() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// Append appends a record, compressed, in as many messages as it needs,
// and returns the sequence of its last one.
func (l *Log) Append(ctx context.Context, record []byte) (uint64, error) {
	return l.append(ctx, s2.Encode(nil, record), "")
}

// AppendTerm appends the record that opens a leader's term: it writes
// nothing, and fences off any append of an earlier leader.
func (l *Log) AppendTerm(ctx context.Context) (uint64, error) {
	return l.append(ctx, nil, "term")
}

func (l *Log) append(ctx context.Context, data []byte, kind string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := max(1, (len(data)+maxPart-1)/maxPart)
	for i := range n {
		until := l.until()
		if !time.Now().Before(until) {
			return 0, fmt.Errorf("%w: the lease may have passed to another server", ErrDeposed)
		}
		part := data[min(i*maxPart, len(data)):min((i+1)*maxPart, len(data))]
		m := nats.NewMsg(LogSubject)
		m.Data = part
		m.Header.Set(HeaderTerm, strconv.FormatUint(l.term, 10))
		m.Header.Set(HeaderLeader, l.leader)
		if n > 1 {
			m.Header.Set(HeaderPart, fmt.Sprintf("%d/%d", i+1, n))
		}
		if kind != "" {
			m.Header.Set(HeaderKind, kind)
		}
		deadline := time.Now().Add(appendTimeout)
		if until.Before(deadline) {
			deadline = until
		}
		actx, cancel := context.WithDeadline(ctx, deadline)
		ack, err := l.js.PublishMsg(actx, m, jetstream.WithExpectLastSequence(l.last), jetstream.WithExpectStream(LogStream))
		cancel()
		if err != nil {
			if wrongLastSequence(err) {
				return 0, fmt.Errorf("%w: another server appended to the log after sequence %d", ErrDeposed, l.last)
			}
			return 0, fmt.Errorf("appending to %s: %w", LogStream, err)
		}
		l.last = ack.Sequence
		l.bytes += uint64(len(part))
	}
	return l.last, nil
}

func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// ErrPurged is returned by Tail when the log no longer holds the records
// after the store's: a snapshot has them, and the server must start from
// it.
var ErrPurged = errors.New("the log was trimmed past this server's store")

// Apply takes a complete record at the sequence of its last message; a
// term record, which writes nothing, comes with a nil record.
type Apply func(seq uint64, record []byte) error

// A Tail reads the log from a sequence on and hands each complete record,
// in order, to its Apply.
type Tail struct {
	js    jetstream.JetStream
	apply Apply

	mu  sync.Mutex
	pos uint64 // the last message read, complete record or not
	// parts are the messages read so far of a record not yet complete;
	// they outlive a reconnection, which reads on from pos.
	parts [][]byte
}

// NewTail returns a tail that reads from the message after from.
func NewTail(js jetstream.JetStream, from uint64, apply Apply) *Tail {
	return &Tail{js: js, pos: from, apply: apply}
}

// Pos returns the sequence of the last message read.
func (t *Tail) Pos() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// Run reads until ctx ends or Apply fails. A record cut short (its leader
// died between its messages) is dropped when the next record starts: its
// leader never committed it.
func (t *Tail) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := t.consume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrPurged) || errors.Is(err, errApply) {
			return err
		}
		// The connection or the stream's leader changed: read on from
		// where we are.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

var errApply = errors.New("applying a log record")

// readerHeartbeat is how often NATS confirms a reader's waiting pull
// request. An ordered consumer that misses two takes its pull as lost and
// recreates itself; with the default (5 s), a reader whose first pull went
// unanswered sat idle for 10 s, as did a server restarted in the chaos
// suite, which won the lease 2 s later and waited 8 s more for its copies
// of the tries' logs.
const readerHeartbeat = time.Second

// Messages iterates over an ordered consumer of the log or of the tries'
// logs, a lost pull noticed within two heartbeats.
func Messages(cons jetstream.Consumer) (jetstream.MessagesContext, error) {
	return cons.Messages(jetstream.PullHeartbeat(readerHeartbeat))
}

func (t *Tail) consume(ctx context.Context) error {
	from := t.Pos() + 1
	cons, err := t.js.OrderedConsumer(ctx, LogStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return err
	}
	it, err := Messages(cons)
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	parts := t.parts
	defer func() { t.parts = parts }()
	for {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if seq != t.Pos()+1 {
			return fmt.Errorf("%w: it reads from %d on, and the log's next message is %d", ErrPurged, t.Pos()+1, seq)
		}
		h := msg.Headers()
		i, n := 1, 1
		if p := h.Get(HeaderPart); p != "" {
			i, n = parsePart(p)
		}
		if i == 1 {
			parts = parts[:0]
		}
		var rerr error
		switch {
		case h.Get(HeaderKind) == "term":
			parts = parts[:0]
			rerr = t.apply(seq, nil)
		case i != len(parts)+1 || n < i:
			// The rest of a record whose start we dropped: skip it.
			parts = parts[:0]
		case i < n:
			parts = append(parts, msg.Data())
		default:
			data := msg.Data()
			if len(parts) > 0 {
				data = joinParts(append(parts, data))
				parts = parts[:0]
			}
			record, err := s2.Decode(nil, data)
			if err != nil {
				rerr = fmt.Errorf("log message %d: %w", seq, err)
			} else {
				rerr = t.apply(seq, record)
			}
		}
		if rerr != nil {
			return fmt.Errorf("%w %d: %w", errApply, seq, rerr)
		}
		t.mu.Lock()
		t.pos = seq
		t.mu.Unlock()
	}
}

func parsePart(p string) (i, n int) {
	a, b, ok := strings.Cut(p, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || i < 1 {
		return 0, 0
	}
	return i, n
}

func joinParts(parts [][]byte) []byte {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	b := make([]byte, 0, size)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// LastSeq returns the log's last sequence.
func LastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	_, last, err := bounds(ctx, js)
	return last, err
}

// FirstSeq returns the sequence of the log's first message (1 on a log
// never trimmed; past the last when it is empty).
func FirstSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	first, _, err := bounds(ctx, js)
	return first, err
}

// TryLogLastSeq returns the last sequence of KILN_TRYLOGS.
func TryLogLastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	_, last, err := streamBounds(ctx, js, TryLogStream)
	return last, err
}

func bounds(ctx context.Context, js jetstream.JetStream) (first, last uint64, err error) {
	return streamBounds(ctx, js, LogStream)
}

func streamBounds(ctx context.Context, js jetstream.JetStream, stream string) (first, last uint64, err error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}
