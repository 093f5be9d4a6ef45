package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/cluster"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// Cluster mode (`kiln server --ha`, docs/operations.md#cluster-mode): the
// server starts as a standby, its store applying the leader's log, and
// its API forwarding every request to the leader; when it takes the
// lease, it catches up with the log, opens its term in it, and runs the
// scheduler and the API as a single server does, each commit appended to
// the log first. A leader that loses the lease stops: its supervisor
// starts it again, as a standby, with nothing of its term left in memory.

// Snapshots: the leader writes one when the log grew by snapshotRecords
// messages, or snapshotEvery passed with anything new, and then trims the
// log up to the snapshot before that, so the log always holds one
// interval more than the latest snapshot needs.
const (
	snapshotRecords = 10_000
	snapshotEvery   = 10 * time.Minute
	snapshotCheck   = 30 * time.Second
)

// checkHA checks the cluster-mode flags and fills in their defaults.
func (f *processFlags) checkHA() error {
	if !f.ha {
		if f.name != "" || f.advertise != "" || f.flags.Changed("lease-ttl") {
			return usageError("--name, --advertise and --lease-ttl go with --ha")
		}
		return nil
	}
	if f.name == "" {
		f.name = wire.WorkerNameFrom(hostname())
	}
	if err := wire.CheckWorker(f.name); err != nil {
		return usageError("--name %q: use 1 to 64 of A-Z a-z 0-9 _ -", f.name)
	}
	if f.leaseTTL < 3*time.Second {
		return usageError("--lease-ttl %s: want at least 3s, since a leader stops 2 s before its lease could expire", f.leaseTTL)
	}
	if f.advertise == "" {
		host, port, err := net.SplitHostPort(f.addr)
		if err != nil {
			return usageError("--addr %q: %v", f.addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = hostname()
		}
		f.advertise = "http://" + net.JoinHostPort(host, port)
	}
	if u, err := url.Parse(f.advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("--advertise %q: want an http:// or https:// URL with a host", f.advertise)
	}
	return nil
}

// haNode is a server in cluster mode.
type haNode struct {
	env  serverEnv
	nc   *nats.Conn
	js   jetstream.JetStream
	info cluster.LeaderInfo

	leaderMu  sync.Mutex
	leader    cluster.LeaderInfo
	hasLeader bool
	lastSeq   uint64
	checked   time.Time
}

// serveHA runs a server in cluster mode until ctx ends or it cannot go on.
func serveHA(ctx context.Context, env serverEnv, startNATS func() (natsServer, error)) error {
	f := env.f
	ns, err := startNATS()
	if err != nil {
		return err
	}
	defer ns.stop()
	nc, err := connectNATS(ns.access.url, "kiln-server-"+f.name, ns.access.scheduler...)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	replicas := f.replicas
	if replicas == 0 {
		replicas = wire.Replicas(nc)
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = cluster.Ensure(ectx, js, replicas, f.leaseTTL)
	cancel()
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	n := &haNode{env: env, nc: nc, js: js, info: cluster.LeaderInfo{Name: f.name, URL: f.advertise}}
	return n.run(ctx)
}

func (n *haNode) run(ctx context.Context) error {
	f, logger := n.env.f, n.env.logger
	unsynced, err := distrustAfterReboot(storeFile(f.data), logger)
	if err != nil {
		return exitErr(err)
	}
	lease, err := n.prepare(ctx, storeFile(f.data))
	if err != nil || ctx.Err() != nil {
		return exitErr(err)
	}
	st, err := openStore(f.data, "stop it first, or give this one another --data")
	if err != nil {
		return err
	}
	defer st.Close()
	logStoreCheck(logger, st.OpenCheck())
	if unsynced.bootID != "" {
		if err := unsynced.mark(); err != nil {
			return exitErr(err)
		}
		st.SkipSync()
		defer func() {
			if st.Close() == nil {
				unsynced.clear()
			}
		}()
	}
	st.Follow()

	tctx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	tail := cluster.NewTail(n.js, st.AppliedSeq(), func(seq uint64, rec []byte) error {
		return st.ApplyRecord(tctx, seq, rec)
	})
	tailDone := make(chan struct{})
	var tailErr error
	go func() {
		tailErr = tail.Run(tctx)
		close(tailDone)
	}()

	// The tries' logs are copied too, until this server leads and writes
	// them itself.
	lctx, stopLogs := context.WithCancel(ctx)
	logsDone := make(chan struct{})
	var logsAt atomic.Uint64
	go func() {
		defer close(logsDone)
		if err := scheduler.FollowLogs(lctx, n.js, f.data, logsAt.Store); err != nil {
			logger.Warn("copying the tries' logs", "err", err)
		}
	}()
	defer func() {
		stopLogs()
		<-logsDone
	}()
	if lease == nil {
		if lease, err = n.standBy(ctx, st, tail, tailDone, &tailErr); err != nil || lease == nil {
			return exitErr(err)
		}
	}
	won := time.Now()
	kctx, stopKeeping := context.WithCancel(context.Background())
	defer stopKeeping()
	kept := make(chan error, 1)
	go func() { kept <- lease.Keep(kctx) }()

	// Catch up with the log, then open the term: from now on an append
	// of any earlier leader is refused.
	last, err := cluster.LastSeq(ctx, n.js)
	for err == nil && tail.Pos() < last {
		select {
		case <-tailDone:
			err = fmt.Errorf("reading the log: %w", tailErr)
		case err = <-kept:
			if err == nil {
				err = cluster.ErrDeposed
			}
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopTail()
	<-tailDone
	storeIn := time.Since(won)
	n.catchUpLogs(ctx, &logsAt, logsDone)
	stopLogs()
	<-logsDone
	logsIn := time.Since(won) - storeIn
	if err == nil && tailErr != nil {
		err = fmt.Errorf("reading the log: %w", tailErr)
	}
	if pos := tail.Pos(); err == nil && pos > last {
		// The reader read past the end it was given: an earlier leader's
		// append landed late. Or the log is behind the store: it was
		// emptied, as when a whole cluster is restored from a backup,
		// and it goes on from the store.
		if last, err = cluster.LastSeq(ctx, n.js); err == nil && last < pos {
			logger.Warn("the log is behind this server's store: it goes on from the store's sequence", "log_seq", last, "store_log_seq", pos)
			err = cluster.Trim(ctx, n.js, pos)
		}
	}
	if err != nil {
		n.release(lease)
		return exitErr(err)
	}
	if _, ok, err := cluster.SnapshotSeq(ctx, n.js); err != nil || !ok {
		// The cluster's first leader: its store, which may hold what it had
		// before it joined a cluster, is what the standbys start from.
		// Before its first append, so that no standby can lead from the log
		// alone. Unsure whether there is one, it writes one too.
		if err != nil {
			logger.Warn("reading the latest snapshot's sequence; writing one to be sure", "err", err)
		}
		if _, _, err := cluster.Snapshot(ctx, n.js, st); err != nil {
			n.release(lease)
			return exitErr(err)
		}
	}
	log := cluster.NewLog(n.js, f.name, lease.Term, tail.Pos(), lease.ValidUntil)
	if _, err := log.AppendTerm(ctx); err != nil {
		n.release(lease)
		return exitErr(err)
	}
	st.Lead(log)
	logger.Info("leading the cluster", "name", f.name, "term", lease.Term, "log_seq", log.Last(), "caught_up_in", time.Since(won).Round(time.Millisecond),
		"store_in", storeIn.Round(time.Millisecond), "tries_logs_in", logsIn.Round(time.Millisecond))
	err = n.lead(ctx, st, log, lease, kept)
	// Stopped, or unable to go on: a standby takes over at once rather
	// than when the lease expires. A lease already lost is left alone.
	stopKeeping()
	n.release(lease)
	return err
}

func exitErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, cluster.ErrDeposed) {
		return &exitError{code: 1, msg: fmt.Sprintf("%v; stopping: started again, this server follows the new leader", err)}
	}
	return &exitError{code: 1, msg: err.Error()}
}

// catchUpLogs waits, for at most 10 s, until the copies of the tries'
// logs have the leader's last write, so that the tries the old leader
// ran keep their whole logs.
func (n *haNode) catchUpLogs(ctx context.Context, at *atomic.Uint64, done <-chan struct{}) {
	last, err := cluster.TryLogLastSeq(ctx, n.js)
	if err != nil {
		n.env.logger.Warn("reading where the tries' logs end; not waiting for their copies: the logs of tries the old leader ran may miss their ends", "err", err)
	}
	deadline := time.After(10 * time.Second)
	for err == nil && at.Load() < last {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-deadline:
			n.env.logger.Warn("the copies of the tries' logs did not catch up in 10 s: the logs of tries the old leader ran may miss their ends", "at", at.Load(), "last", last)
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// release gives the lease up, so that a standby takes over at once; a
// lease no longer surely this server's is left to expire.
func (n *haNode) release(l *cluster.Lease) {
	if !l.Valid() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		n.env.logger.Warn("giving the lease up; a standby takes over once it expires", "err", err)
	}
}

// unsyncedMarker is the file beside a cluster server's store that says,
// while the store skips fsync, under which boot of the host it does
// (store.SkipSync). A marker of another boot at start means the host went
// down while the store's writes were in its page cache only: the file may
// hold stale pages its check cannot tell, so it is set aside, and the
// server starts from the latest snapshot.
type unsyncedMarker struct {
	path, bootID string
}

// bootIDFile is where Linux says which boot of the host this is.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// distrustAfterReboot sets the store at path aside if a marker says it
// skipped fsync under another boot of the host. The marker it returns
// has no boot id where the host says none: the store then keeps fsync.
func distrustAfterReboot(path string, logger *slog.Logger) (unsyncedMarker, error) {
	m := unsyncedMarker{path: path + ".unsynced"}
	if b, err := os.ReadFile(bootIDFile); err == nil {
		m.bootID = strings.TrimSpace(string(b))
	}
	was, err := os.ReadFile(m.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if string(was) == m.bootID {
		return m, nil // the process died, not the host: the kernel kept every write
	}
	aside := fmt.Sprintf("%s.unsynced-%d", path, time.Now().Unix())
	if err := os.Rename(path, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
		return m, err
	}
	logger.Warn("the host went down while this server's store skipped fsync: starting from the cluster's latest snapshot instead", "kept_aside", aside)
	return m, os.Remove(m.path)
}

// mark writes the marker, durably, before the store skips a sync.
func (m unsyncedMarker) mark() error {
	f, err := os.Create(m.path)
	if err != nil {
		return err
	}
	_, err = f.WriteString(m.bootID)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(m.path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// clear removes the marker once the store was synced and closed.
func (m unsyncedMarker) clear() { _ = os.Remove(m.path) }

// prepare makes sure the store at path can read on from the log: a store
// that holds no record yet, one the log was trimmed past, or a damaged
// one, is replaced by the latest snapshot (the old file kept aside). When there is no
// snapshot yet, nobody ever led: it campaigns, and returns the lease if it
// takes it, its store the cluster's first.
func (n *haNode) prepare(ctx context.Context, path string) (*cluster.Lease, error) {
	applied, exists, err := peekApplied(path)
	var damaged *store.DamagedError
	switch {
	case errors.As(err, &damaged):
		// The store is a copy of the log's: a damaged one (a host that
		// died between commits its file did not sync) is replaced.
		n.env.logger.Warn("this server's store is damaged: starting from the cluster's latest snapshot instead", "problems", damaged.Problems)
		applied, err = 0, nil
	case err != nil:
		return nil, err
	}
	first, err := cluster.FirstSeq(ctx, n.js)
	if err != nil {
		return nil, err
	}
	if applied > 0 && applied+1 >= first {
		return nil, nil
	}
	for {
		_, ok, err := cluster.SnapshotSeq(ctx, n.js)
		if err != nil {
			return nil, err
		}
		if ok {
			if exists {
				aside := fmt.Sprintf("%s.replaced-%d", path, time.Now().Unix())
				if err := os.Rename(path, aside); err != nil {
					return nil, err
				}
				n.env.logger.Warn("this store cannot read on from the log: starting from the cluster's latest snapshot instead", "kept_aside", aside, "log_seq", applied)
			}
			seq, _, err := cluster.Restore(ctx, n.js, path)
			if err != nil {
				return nil, err
			}
			n.env.logger.Info("store restored from the cluster's snapshot", "log_seq", seq)
			return nil, nil
		}
		if applied > 0 {
			return nil, fmt.Errorf("the log was trimmed past this store (at %d, the log starts at %d) and there is no snapshot", applied, first)
		}
		l, err := cluster.TryLease(ctx, n.js, n.info, n.env.f.leaseTTL)
		if l != nil || err != nil {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// peekApplied returns the log sequence of the store at path, and whether
// there is one.
func peekApplied(path string) (uint64, bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	st, err := store.Open(path)
	if err != nil {
		return 0, true, err
	}
	defer st.Close()
	return st.AppliedSeq(), true, nil
}

// standBy serves the standby's API until this server takes the lease
// (returned), ctx ends (nil) or the log cannot be read (an error).
func (n *haNode) standBy(ctx context.Context, st *store.Store, tail *cluster.Tail, tailDone <-chan struct{}, tailErr *error) (*cluster.Lease, error) {
	f, logger := n.env.f, n.env.logger
	// A standby forwards what it takes to the leader, whose API may listen
	// on loopback only: beyond loopback, it needs authentication as the
	// leader would, or remote requests would reach the leader as local.
	if err := checkAddr(f.addr, f.data, st); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", f.addr, err)
	}
	srv := &http.Server{Handler: n.standbyHandler(st, tail, tailDone), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	grace := apiGrace
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	logger.Info("standing by", "name", f.name, "api", "http://"+ln.Addr().String(), "log_seq", st.AppliedSeq())
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	won := make(chan *cluster.Lease, 1)
	go func() {
		l, _ := cluster.Campaign(cctx, n.js, n.info, f.leaseTTL)
		won <- l
	}()
	select {
	case l := <-won:
		// Requests still being forwarded went to the old leader, which is
		// dead or cut off (a partitioned one never answers): they are cut
		// short, so as not to hold up the takeover.
		grace = 0
		return l, nil
	case <-tailDone:
		cancel()
		if l := <-won; l != nil {
			n.release(l)
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the log: %w", *tailErr)
	}
}

// leaderInfo returns who leads and the log's last sequence, asked of NATS
// at most twice a second.
func (n *haNode) leaderInfo(ctx context.Context) (cluster.LeaderInfo, bool, uint64) {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if time.Since(n.checked) > 500*time.Millisecond {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		info, ok, err := cluster.Leader(ctx, n.js)
		if err == nil {
			n.leader, n.hasLeader = info, ok
		}
		if last, err := cluster.LastSeq(ctx, n.js); err == nil {
			n.lastSeq = last
		}
		n.checked = time.Now()
	}
	return n.leader, n.hasLeader, n.lastSeq
}

// standbyHandler answers /healthz and /metrics itself and forwards every
// other request to the leader's API.
func (n *haNode) standbyHandler(st *store.Store, tail *cluster.Tail, tailDone <-chan struct{}) http.Handler {
	metrics := newMetrics()
	metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_cluster_log_lag",
		Help: "Log messages this standby has yet to apply.",
	}, func() float64 {
		_, _, last := n.leaderInfo(context.Background())
		return float64(last - min(last, tail.Pos()))
	}))
	// A leader that does not answer a connection within a few seconds is
	// taken as gone: the client hears so (502) instead of waiting.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 15 * time.Second}).DialContext
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		leader, ok, last := n.leaderInfo(r.Context())
		h := ui.Health{Status: "ok", Version: buildinfo.Get().Version, Scheduler: ui.SchedulerHealth{
			Role: "standby", Name: n.info.Name, LogSeq: st.AppliedSeq(), Lag: last - min(last, tail.Pos()),
		}}
		if ok {
			h.Scheduler.Leader = leader.Name
		}
		code := http.StatusOK
		select {
		case <-tailDone:
			h.Status, h.Error, code = "unavailable", "this standby stopped reading the log", http.StatusServiceUnavailable
		default:
			if n.nc.Status() != nats.CONNECTED {
				h.Status, h.Error, code = "unavailable", "NATS: "+n.nc.Status().String(), http.StatusServiceUnavailable
			}
		}
		writeJSON(w, code, h)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		leader, ok, _ := n.leaderInfo(r.Context())
		if !ok || leader.Name == n.info.Name {
			writeJSON(w, http.StatusServiceUnavailable, ui.ErrorBody{Error: "no server leads the cluster right now: a standby takes over within the lease TTL; try again in a few seconds"})
			return
		}
		target, err := url.Parse(leader.URL)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, ui.ErrorBody{Error: fmt.Sprintf("the leader %s advertises a bad URL %q", leader.Name, leader.URL)})
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport:     transport,
			FlushInterval: -1, // streams (events, followed logs) pass at once
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				writeJSON(w, http.StatusBadGateway, ui.ErrorBody{Error: fmt.Sprintf("the leader %s at %s did not answer: %v", leader.Name, leader.URL, err)})
			},
		}
		proxy.ServeHTTP(w, r)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// lead runs the scheduler and the API of the leader until ctx ends or it
// cannot go on; kept says when the lease is lost.
func (n *haNode) lead(ctx context.Context, st *store.Store, log *cluster.Log, lease *cluster.Lease, kept <-chan error) error {
	f, logger := n.env.f, n.env.logger
	if err := checkAddr(f.addr, f.data, st); err != nil {
		return err
	}
	loopback, _ := isLoopbackAddr("--addr", f.addr)
	if !loopback {
		warnPlainHTTP(logger, f.addr)
	}
	metrics := newMetrics()
	metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_cluster_log_seq",
		Help: "The log sequence of this leader's last commit.",
	}, func() float64 { return float64(log.Last()) }))
	sched, err := n.env.scheduler(st, n.nc, metrics)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ln, err := listenAgain(ctx, f.addr)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	api := ui.New(sched, ui.Options{Logger: logger, Plugins: apiPlugins{n.env.reg}, Metrics: metrics,
		Replication: func() ui.SchedulerHealth {
			return ui.SchedulerHealth{Role: "leader", Name: f.name, Leader: f.name, LogSeq: st.AppliedSeq()}
		}})
	parts := &processParts{sched: sched, api: api, ln: ln, alongside: []func(context.Context) error{
		func(ctx context.Context) error { return watchLease(ctx, logger, lease, kept) },
		func(ctx context.Context) error { n.snapshots(ctx, st, log); return nil },
	}}
	logger.Info("kiln is up", "api", "http://"+ln.Addr().String(), "dags", n.env.dagsDir, "data", f.data)
	return parts.run(ctx, logger, f.data)
}

// watchLease returns, with an error wrapping cluster.ErrDeposed, as soon
// as the lease is lost: the keeper says so (another server holds it), or
// it is no longer surely this server's, even while a renewal is still
// waiting for NATS. It returns nil when ctx ends.
func watchLease(ctx context.Context, logger *slog.Logger, lease *cluster.Lease, kept <-chan error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case err = <-kept:
		case <-tick.C:
			if lease.Valid() {
				continue
			}
			err = fmt.Errorf("%w: the lease could not be renewed in time", cluster.ErrDeposed)
		}
		if err != nil {
			logger.Error("lost the lease: committing and dispatching nothing more", "valid_until", lease.ValidUntil().UTC().Format(time.RFC3339Nano), "err", err)
		}
		return err
	}
}

// listenAgain listens on addr, which the standby's server has just let
// go of, trying for a few seconds.
func listenAgain(ctx context.Context, addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return ln, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshots writes the leader's snapshots and trims the log (see
// snapshotRecords) until ctx ends.
func (n *haNode) snapshots(ctx context.Context, st *store.Store, log *cluster.Log) {
	logger := n.env.logger
	prev, _, err := cluster.SnapshotSeq(ctx, n.js)
	if err != nil {
		logger.Warn("reading the latest snapshot's sequence", "err", err)
	}
	// last is the log's end at the latest snapshot: the log grows by the
	// leader's term record alone, which a snapshot does not hold.
	last, at := log.Last(), time.Now()
	tick := time.NewTicker(snapshotCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		grown := log.Last() - min(log.Last(), last)
		if grown == 0 || grown < snapshotRecords && time.Since(at) < snapshotEvery {
			continue
		}
		seq, size, err := cluster.Snapshot(ctx, n.js, st)
		if err != nil {
			logger.Warn("writing a snapshot; trying again later", "err", err)
			continue
		}
		if prev > 0 {
			if err := cluster.Trim(ctx, n.js, prev); err != nil {
				logger.Warn("trimming the log", "err", err)
			}
		}
		logger.Info("snapshot written", "log_seq", seq, "bytes", size, "log_trimmed_to", prev)
		prev, last, at = seq, log.Last(), time.Now()
	}
}
