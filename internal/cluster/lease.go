package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaderInfo is the lease's value: who leads, and where its API is.
type LeaderInfo struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Since is when it took the lease.
	Since time.Time `json:"since"`
}

// leaseMargin is how long before the lease could expire, by this
// server's clock, a leader stops taking it as held: it stops appending
// and dispatching, while no other server can have it yet.
const leaseMargin = 2 * time.Second

// pollEvery is how often a standby tries to take the lease.
const pollEvery = 250 * time.Millisecond

// A Lease is this server's hold on KILN_LEADER. Its revision when taken
// is the leader's term.
type Lease struct {
	kv   jetstream.KeyValue
	ttl  time.Duration
	info []byte
	// Term is the lease's revision when this server took it.
	Term uint64

	mu      sync.Mutex
	rev     uint64
	renewed time.Time // when the last write that succeeded was sent
	given   bool      // Release was called: no renewal counts after it
}

// Campaign waits until this server holds the lease, or ctx ends. The
// lease is free when its key does not exist: its leader let it go or
// stopped renewing it for the bucket's TTL.
func Campaign(ctx context.Context, js jetstream.JetStream, info LeaderInfo, ttl time.Duration) (*Lease, error) {
	for {
		l, err := TryLease(ctx, js, info, ttl)
		if l != nil || ctx.Err() != nil {
			return l, cmp.Or(ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// TryLease takes the lease if it is free; it returns nil when another
// server holds it, or with the error that kept it from asking.
func TryLease(ctx context.Context, js jetstream.JetStream, info LeaderInfo, ttl time.Duration) (*Lease, error) {
	kv, err := js.KeyValue(ctx, LeaseBucket)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", LeaseBucket, err)
	}
	info.Since = time.Now().UTC()
	val, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rev, err := kv.Create(rctx, LeaseKey, val)
	switch {
	case err == nil:
		// The bucket's TTL is set by the server that started last: should
		// it be shorter than this server's, the lease expires by it.
		if st, err := kv.Status(rctx); err == nil && st.TTL() > 0 && st.TTL() < ttl {
			ttl = st.TTL()
		}
		return &Lease{kv: kv, ttl: ttl, info: val, Term: rev, rev: rev, renewed: sent}, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return nil, nil
	}
	return nil, fmt.Errorf("taking the lease: %w", err)
}

// Valid reports whether the lease is surely still this server's: its
// last renewal was sent less than TTL − 2 s ago.
func (l *Lease) Valid() bool { return time.Now().Before(l.ValidUntil()) }

// ValidUntil is when the lease stops being surely this server's, unless
// renewed: TTL − 2 s after its last renewal was sent. From then on the
// log refuses this server's appends, so it commits and dispatches
// nothing.
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed.Add(l.ttl - leaseMargin)
}

// Keep renews the lease every TTL/6 until ctx ends (then it returns nil)
// or the lease is lost: another server holds it, or no renewal succeeded
// for TTL − 2 s. Then it returns an error wrapping ErrDeposed.
func (l *Lease) Keep(ctx context.Context) error {
	tick := time.NewTicker(l.ttl / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		l.mu.Lock()
		rev, left, given := l.rev, l.ttl-leaseMargin-time.Since(l.renewed), l.given
		l.mu.Unlock()
		if given {
			return nil
		}
		if left <= 0 {
			return fmt.Errorf("%w: the lease could not be renewed for %s", ErrDeposed, l.ttl-leaseMargin)
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, min(time.Second, left))
		next, err := l.kv.Update(rctx, LeaseKey, l.info, rev)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			if !l.given {
				l.rev, l.renewed = next, sent
			}
			l.mu.Unlock()
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// Not knowing whose the lease is now, it tries again at the
			// next tick; the check of what is left deposes it in time.
			if mine, known := l.landed(ctx, left); known && !mine {
				return fmt.Errorf("%w: another server holds the lease", ErrDeposed)
			}
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			return fmt.Errorf("%w: another server holds the lease", ErrDeposed)
		}
	}
}

// landed reports whether the lease's current revision is a renewal of this
// server's whose answer was lost (it timed out, and landed): its value is
// this lease's own, which holds when it was taken, so no other server's
// can equal it. Then it renews from that revision on; the renewal's time
// stays that of the last one answered, which is earlier, so the lease is
// never taken as held longer than it is. known is false when NATS did not
// say.
func (l *Lease) landed(ctx context.Context, left time.Duration) (mine, known bool) {
	rctx, cancel := context.WithTimeout(ctx, min(time.Second, left))
	defer cancel()
	e, err := l.kv.Get(rctx, LeaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, true
	case err != nil:
		return false, false
	case !bytes.Equal(e.Value(), l.info):
		return false, true
	}
	l.mu.Lock()
	l.rev = e.Revision()
	l.mu.Unlock()
	return true, true
}

// Release gives the lease up at once, so that a standby need not wait for
// it to expire; a lease already lost is left alone.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.renewed, l.given = time.Time{}, true
	l.mu.Unlock()
	return l.kv.Delete(ctx, LeaseKey, jetstream.LastRevision(rev))
}

// Leader returns who holds the lease; ok is false when nobody does.
func Leader(ctx context.Context, js jetstream.JetStream) (info LeaderInfo, ok bool, err error) {
	kv, err := js.KeyValue(ctx, LeaseBucket)
	if err != nil {
		return info, false, err
	}
	e, err := kv.Get(ctx, LeaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return info, false, nil
	}
	if err != nil {
		return info, false, err
	}
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		return info, false, fmt.Errorf("the lease's value: %w", err)
	}
	return info, true, nil
}
