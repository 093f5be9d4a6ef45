package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/cluster"
	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/internal/wire"
)

// Tries' logs in cluster mode (docs/operations.md#cluster-mode). The
// leader writes each try's log to its own data folder (logs.go) and
// publishes each write, as it landed in the file, to KILN_TRYLOGS; every
// standby writes it at the same offset in its own folder (FollowLogs). So
// after a failover the new leader has the logs of the tries that ran
// under the old one, and goes on appending to them. The copies are best
// effort: a write the old leader made in the instant before it died may
// be missing from them.

// logWrite is one write to a try's log, as it landed in the file.
type logWrite struct {
	wire.TryKey
	Off  int64     `json:"off"`
	Data []byte    `json:"data"`
	At   time.Time `json:"at"`
}

// publishLogWrite sends a write to the standbys, without waiting.
func (s *Scheduler) publishLogWrite(k wire.TryKey, off int64, data []byte, at time.Time) {
	b, err := json.Marshal(logWrite{TryKey: k, Off: off, Data: data, At: at})
	if err == nil {
		_, err = s.js.PublishAsync(cluster.TryLogSubject, b)
	}
	if err != nil {
		s.log.Debug("copying a write of a try's log to the standbys", "try", k.String(), "err", err)
	}
}

// FollowLogs writes the leader's writes to tries' logs into the logs
// folder under dataDir, from where it left off, until ctx ends; after each
// it calls took with the write's sequence in KILN_TRYLOGS.
func FollowLogs(ctx context.Context, js jetstream.JetStream, dataDir string, took func(seq uint64)) error {
	l := &logStore{dir: filepath.Join(dataDir, "logs")}
	posFile := filepath.Join(l.dir, ".followed")
	var pos uint64
	if b, err := os.ReadFile(posFile); err == nil {
		pos, _ = strconv.ParseUint(string(b), 10, 64)
	}
	saved := pos
	took(pos)
	for ctx.Err() == nil {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if pos > 0 {
			cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: pos + 1}
		}
		cons, err := js.OrderedConsumer(ctx, cluster.TryLogStream, cfg)
		if err == nil {
			pos, err = l.follow(ctx, cons, pos, func(p uint64) {
				took(p)
				if p-saved >= 100 {
					saved = p
					_ = os.WriteFile(posFile, []byte(strconv.FormatUint(p, 10)), 0o644)
				}
			})
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	if pos > saved {
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(posFile, []byte(strconv.FormatUint(pos, 10)), 0o644)
	}
	return nil
}

// follow writes what cons delivers until ctx ends, and returns the stream
// sequence of the last write taken.
func (l *logStore) follow(ctx context.Context, cons jetstream.Consumer, pos uint64, progress func(uint64)) (uint64, error) {
	it, err := cluster.Messages(cons)
	if err != nil {
		return pos, err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			return pos, err
		}
		md, err := msg.Metadata()
		if err != nil {
			return pos, err
		}
		var w logWrite
		if err := json.Unmarshal(msg.Data(), &w); err == nil {
			if err := l.put(w); err != nil {
				return pos, fmt.Errorf("copying a write to the log of %s: %w", w.TryKey, err)
			}
		}
		pos = md.Sequence.Stream
		progress(pos)
	}
}

// put writes w at its offset, with its time.
func (l *logStore) put(w logWrite) error {
	p := l.path(w.TryKey)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = logtimes.Append(p, w.Off, w.At)
	if err == nil {
		_, err = f.WriteAt(w.Data, w.Off)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
