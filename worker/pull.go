package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

const (
	// pullExpiry is how long a pull request waits for assignments. With
	// one queue it only bounds how long a lost request goes unnoticed.
	pullExpiry = 10 * time.Second
	// pullExpiryShared is the expiry with several queues: a request holds
	// slots another queue may need, so idle requests give them back often.
	pullExpiryShared = time.Second
	// pullGrace is how long past its expiry a request may stay unanswered
	// before the worker gives up on it and makes a new one.
	pullGrace = 2 * time.Second
	// drainTimeout bounds the wait for an abandoned request's inbox to be
	// closed on the server.
	drainTimeout = 5 * time.Second
)

// A puller pulls the assignments of one queue, one pull request at a time,
// each request asking for as many assignments as it has reserved slots.
//
// It talks to the consumer through the JetStream pull API directly rather
// than through jetstream.Consumer.Fetch, so that an abandoned request's
// inbox can be drained: an assignment the server sent just before the
// worker gave up on the request is seen and handed back at once, instead of
// waiting out the ack timeout on a dead inbox.
type puller struct {
	w      *Worker
	queue  string
	api    string // the consumer's "next messages" API subject
	expiry time.Duration

	// want is how many slots the next request reserves. With several
	// queues it adapts: one while the queue is idle, doubling while every
	// request comes back full, so an idle queue holds one slot only.
	want int
}

func newPuller(w *Worker, queue string) *puller {
	p := &puller{
		w:      w,
		queue:  queue,
		api:    fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", wire.TasksStream, wire.TaskConsumerName(queue)),
		expiry: pullExpiry,
		want:   w.cfg.Slots,
	}
	if len(w.cfg.Queues) > 1 {
		p.expiry = pullExpiryShared
		p.want = 1
	}
	return p
}

// pullEnd is how a pull request ended.
type pullEnd struct {
	kind      endKind
	delivered int
	err       error
}

type endKind int

const (
	endFull    endKind = iota // every reserved slot got an assignment
	endExpired                // the server ended the request at its expiry
	endAborted                // the worker gave up on the request
	endFailed                 // the request could not be made or was refused
)

func (p *puller) run(ctx context.Context) {
	log := p.w.log.With("queue", p.queue)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !p.waitConnected(ctx) {
			return
		}
		n, err := p.w.slots.acquire(ctx, p.want)
		if err != nil {
			return
		}
		end := p.pull(ctx, n)
		switch end.kind {
		case endFull:
			p.want = min(2*p.want, p.w.cfg.Slots)
			backoff = 0
		case endExpired:
			if end.delivered == 0 && len(p.w.cfg.Queues) > 1 {
				p.want = 1
			}
			backoff = 0
		case endAborted:
		case endFailed:
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			log.Warn("pulling assignments failed; retrying", "error", end.err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if errors.Is(end.err, errPullRefused) && p.consumerGone(ctx) {
				log.Warn("the queue's consumer is gone; re-creating it")
				if err := p.w.ensure(ctx); err != nil {
					log.Warn("re-creating the queue's consumer failed", "error", err)
				}
			}
		}
	}
}

// consumerGone asks JetStream whether the queue's consumer, or its stream,
// is gone: deleted by hand, or lost with the server's store. A pull
// request waiting on a consumer being deleted is refused with 409, and
// later ones find no responder (503).
func (p *puller) consumerGone(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := p.w.js.Consumer(ctx, wire.TasksStream, wire.TaskConsumerName(p.queue))
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// waitConnected waits until the connection is up; false if ctx ended.
func (p *puller) waitConnected(ctx context.Context) bool {
	for {
		sig := p.w.reconnectSignal()
		if p.w.nc.IsConnected() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-sig:
		case <-time.After(time.Second):
		}
	}
}

// pull makes one pull request for n assignments, n slots being reserved
// for it, and returns when the request is over. Slots it did not fill are
// back in the pool by then.
func (p *puller) pull(ctx context.Context, n int) pullEnd {
	nc := p.w.nc
	r := &pullReq{p: p, batch: n, reserved: n, end: make(chan pullEnd, 1)}
	recon := p.w.reconnectSignal()
	inbox := nc.NewInbox()
	sub, err := nc.Subscribe(inbox, r.onMsg)
	if err != nil {
		r.close()
		return pullEnd{kind: endFailed, err: err}
	}
	body := fmt.Appendf(nil, `{"batch":%d,"expires":%d}`, n, p.expiry.Nanoseconds())
	if err := nc.PublishRequest(p.api, inbox, body); err != nil {
		_ = sub.Unsubscribe()
		r.close()
		return pullEnd{kind: endFailed, err: err}
	}
	timer := time.NewTimer(p.expiry + pullGrace)
	defer timer.Stop()
	select {
	case end := <-r.end:
		// The server is done with the request: nothing more comes.
		_ = sub.Unsubscribe()
		end.delivered = r.close()
		return end
	case <-ctx.Done():
	case <-recon:
	case <-timer.C:
	}
	delivered := r.close()
	p.drain(sub)
	return pullEnd{kind: endAborted, delivered: delivered}
}

// drain ends an abandoned request's subscription such that whatever the
// server sent to it before it learned of the end still reaches onMsg,
// which hands it back.
func (p *puller) drain(sub *nats.Subscription) {
	if !p.w.nc.IsConnected() {
		_ = sub.Unsubscribe()
		return
	}
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err != nil {
		_ = sub.Unsubscribe()
		return
	}
	p.w.drains.Go(func() {
		select {
		case <-closed:
		case <-time.After(drainTimeout):
			_ = sub.Unsubscribe()
		}
	})
}

// errPullRefused is a pull request the server refused, or that no
// consumer answered.
var errPullRefused = errors.New("pull request refused")

// pullReq is one pull request in flight.
type pullReq struct {
	p     *puller
	batch int
	end   chan pullEnd

	mu        sync.Mutex
	reserved  int // slots reserved and not yet filled
	delivered int
	closed    bool
}

// onMsg handles what the server sends to the request's inbox: assignments
// and status messages.
func (r *pullReq) onMsg(m *nats.Msg) {
	if code, desc, ok := statusOf(m); ok {
		switch code {
		case "100": // idle heartbeat or flow control
			return
		case "404", "408": // no messages; request expired
			r.signal(pullEnd{kind: endExpired})
		case "409":
			r.signal(pullEnd{kind: endFailed, err: fmt.Errorf("%w: %s", errPullRefused, desc)})
		case "503":
			r.signal(pullEnd{kind: endFailed, err: fmt.Errorf("%w: no responder: the consumer is gone or JetStream is not available", errPullRefused)})
		default:
			r.signal(pullEnd{kind: endFailed, err: fmt.Errorf("pull request: status %s %s", code, desc)})
		}
		return
	}
	w := r.p.w
	r.mu.Lock()
	if r.closed || r.reserved == 0 || w.stopping.Load() {
		r.mu.Unlock()
		w.handBack(m)
		return
	}
	r.reserved--
	r.delivered++
	full := r.delivered == r.batch
	w.tries.Add(1) // under mu: Run's Wait starts only after close
	r.mu.Unlock()
	go w.runTry(m, r.p.queue)
	if full {
		r.signal(pullEnd{kind: endFull})
	}
}

func (r *pullReq) signal(e pullEnd) {
	select {
	case r.end <- e:
	default:
	}
}

// close ends the request's hold on its slots, returning the unfilled ones
// to the pool; whatever arrives later is handed back. It returns how many
// assignments the request delivered.
func (r *pullReq) close() int {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return r.delivered
	}
	r.closed = true
	n, d := r.reserved, r.delivered
	r.reserved = 0
	r.mu.Unlock()
	r.p.w.slots.release(n)
	return d
}

// statusOf returns the status code and description of a JetStream status
// message, which has headers and no payload.
func statusOf(m *nats.Msg) (code, desc string, ok bool) {
	if len(m.Data) > 0 || m.Header == nil {
		return "", "", false
	}
	code = m.Header.Get("Status")
	if code == "" {
		return "", "", false
	}
	return code, m.Header.Get("Description"), true
}
