package worker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
)

// DefaultHeartbeat is the heartbeat interval of an assignment that sets
// none.
const DefaultHeartbeat = 5 * time.Second

// ackTimeout bounds the wait for JetStream to confirm an ack.
const ackTimeout = 10 * time.Second

// startTimeout bounds the retries of a started event; the try then runs
// without it, its heartbeats telling the scheduler it runs.
const startTimeout = 30 * time.Second

// tryRun is a try this worker runs, as known to cancels.
type tryRun struct {
	cancel context.CancelCauseFunc
}

// cancelledError is the cause of a try stopped by a wire.Cancel.
type cancelledError struct{ reason string }

func (e *cancelledError) Error() string { return "cancelled: " + e.reason }

// timeoutError is the cause of a try stopped by its timeout.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return "timed out after " + e.after.String() }

// runTry takes a delivered assignment: it makes the try this worker's and
// runs it. It holds one slot, released when the try has been reported.
func (w *Worker) runTry(m *nats.Msg, queue string) {
	defer w.tries.Done()
	defer w.slots.release(1)

	var a wire.Assignment
	if err := json.Unmarshal(m.Data, &a); err != nil {
		w.log.Error("dropping a malformed assignment", "queue", queue, "error", err)
		w.reply(m, "+TERM")
		return
	}
	if err := checkAssignment(&a); err != nil {
		w.log.Error("dropping an invalid assignment", "queue", queue, "error", err)
		w.reply(m, "+TERM")
		return
	}
	log := w.log.With(tryAttrs(a.TryKey)...)

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w.mu.Lock()
	_, dup := w.running[a.TryKey]
	if !dup {
		w.running[a.TryKey] = &tryRun{cancel: cancel}
		if reason, ok := w.takeEarlyCancelLocked(a.TryKey); ok {
			// Cancelled on its way here: take it, and report it cancelled
			// without running it, so it does not run later elsewhere.
			cancel(&cancelledError{reason: reason})
		}
	}
	w.mu.Unlock()
	if dup {
		// The same try delivered twice: it runs here already.
		log.Warn("dropping a duplicate assignment of a running try")
		_ = w.doubleAck(m)
		return
	}
	w.noteRunning()
	defer func() {
		w.mu.Lock()
		delete(w.running, a.TryKey)
		w.mu.Unlock()
		w.noteRunning()
	}()

	if w.stopping.Load() {
		w.handBack(m)
		return
	}
	// The ack is confirmed while the started event is published: both are
	// a round trip, and the try waits for both.
	acked := make(chan error, 1)
	go func() { acked <- w.doubleAck(m) }()
	w.execute(ctx, &a, acked, log)
}

func checkAssignment(a *wire.Assignment) error {
	switch {
	case a.DAGID == "" || a.RunID == "" || a.TaskID == "":
		return fmt.Errorf("try %s: incomplete try key", a.TryKey)
	case !wire.ValidSubjectPart(a.DAGID):
		return fmt.Errorf("try %s: DAG id %q cannot name an event subject, so the try could not be reported", a.TryKey, a.DAGID)
	case a.Try < 1:
		return fmt.Errorf("try %s: try number %d", a.TryKey, a.Try)
	case a.Plugin == "":
		return fmt.Errorf("try %s: no plugin", a.TryKey)
	}
	return nil
}

// execute runs a try once its ack is confirmed, and reports it.
func (w *Worker) execute(ctx context.Context, a *wire.Assignment, acked <-chan error, log *slog.Logger) {
	report, cancelReport := context.WithTimeout(context.Background(), reportTimeout)
	defer cancelReport()
	ev := w.newEvents(report, a.TryKey, a.Poke, log)

	startCtx, cancelStart := context.WithTimeout(report, startTimeout)
	defer cancelStart()
	started := make(chan error, 1)
	go func() { started <- ev.publish(startCtx, ev.event(wire.EventStarted), 0) }()
	// The $KILN_OUTPUT file is created by the task if it writes outputs,
	// and removed once the try has been reported, off the way from one
	// task to the next.
	out := w.outputPath()
	defer os.Remove(out)
	if err := <-acked; err != nil {
		// Whether the ack landed is unknown. If it did not, JetStream hands
		// the try to a worker again after the ack wait; if it did, the
		// scheduler fails the try for want of heartbeats. Running it here
		// could run it twice.
		log.Error("could not confirm the ack of an assignment; not running it", "error", err)
		cancelStart()
		<-started
		ev.flush()
		return
	}
	if err := <-started; err != nil {
		// A try that cannot be reported must not run: nobody would learn
		// its end, and it would hold a slot while the scheduler, hearing
		// nothing, queues it again as lost.
		log.Error("could not report the try started; not running it", "error", err)
		ev.flush()
		return
	}
	log.Debug("try started", "plugin", a.Plugin)

	logs := newLogStream(a.LogLimit, func(off int64, data []byte) {
		e := ev.event(wire.EventLog)
		e.Offset, e.Data = a.LogOffset+off, data // after earlier pokes' log
		ev.publishAsync(e, e.Offset)             // encodes data before it returns
	})
	logs.masking(a.Mask)
	stopBeats := w.heartbeat(ev, a.Heartbeat)

	fin := ev.event(wire.EventFinished)
	switch {
	case ctx.Err() != nil:
		fin.Error = context.Cause(ctx).Error() // cancelled before it ran
		logs.note("kiln: " + fin.Error)
	default:
		dir, err := w.newWorkdir()
		if err != nil {
			fin.Error = err.Error()
			logs.note("kiln: " + fin.Error)
			break
		}
		// Removed once the try has been reported, off the way from its
		// end to the scheduler.
		defer w.removeWorkdir(dir, log)
		w.run(ctx, a, dir, out, logs, fin)
	}

	fin.Error = logs.mask.maskString(fin.Error)
	fin.LogSent, fin.LogBytes = logs.Close()
	stopBeats()
	ev.flush() // every log chunk is stored before finished is sent
	fin.Time = time.Now().UTC()
	if err := ev.publish(report, fin, 0); err != nil {
		log.Error("could not report the try finished", "error", err)
		return
	}
	log.Debug("try finished", "success", fin.Success, "error", fin.Error)
}

// run runs the try in its working directory dir: it downloads its
// inputs, runs it through the Runner with $KILN_OUTPUT naming out, and
// once it succeeded stores its artifacts. It sets fin's outcome, outputs
// and artifacts.
func (w *Worker) run(ctx context.Context, a *wire.Assignment, dir, out string, logs *logStream, fin *wire.Event) {
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, a.Timeout, &timeoutError{a.Timeout})
		defer cancel()
	}
	fail := func(err error) {
		fin.Success, fin.Error = false, err.Error()
		if ctx.Err() != nil {
			fin.Error = context.Cause(ctx).Error()
		}
		logs.note("kiln: " + fin.Error)
	}
	inputs, err := w.fetchInputs(ctx, a.Inputs, dir, logs)
	if err != nil {
		fail(err)
		return
	}
	with, env := withInputs(a.With, a.Env, inputs)
	extra := []string{"KILN_OUTPUT=" + out, "KILN_WORKDIR=" + dir, "KILN_PROJECT_DIR=" + w.cfg.ProjectDir, "KILN_WORKER=" + w.cfg.Name}
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		extra = append(extra, wire.InputEnv(name)+"="+inputs[name])
	}
	req := host.Request{
		With:    with,
		Env:     taskEnv(w.cfg.BaseEnv, env, extra...),
		TaskEnv: taskEnv(nil, env, extra...),
		WorkDir: dir,
		Try:     a.TryKey.String(),
	}
	res, err := w.invoke(ctx, a.Plugin, req, logs)
	if s := a.Sensor; s != nil && !s.Reschedule {
		res, err = w.poke(ctx, a, req, logs, res, err, fin)
	}
	fin.Runtime = &wire.Runtime{
		Host:          w.host,
		KilnVersion:   buildinfo.Get().Version,
		PluginVersion: res.Build.Version,
		PluginSHA256:  res.Build.SHA256,
		Facts:         res.Facts,
	}
	for k, v := range fin.Runtime.Facts {
		fin.Runtime.Facts[k] = logs.mask.maskString(v)
	}
	fin.Success, fin.ExitCode, fin.Error = outcome(ctx, res, err)
	fin.PokeAgain = err == nil && res.PokeAgain
	if fin.SensorTimeout {
		fin.Error = fmt.Sprintf("sensor timed out: its condition was not met by %s", a.Sensor.Deadline.Format(time.RFC3339))
		logs.note("kiln: " + fin.Error)
	}
	if err != nil && ctx.Err() == nil {
		logs.note("kiln: " + err.Error())
	}
	outputs, err := readOutputs(out)
	if err != nil {
		logs.note("kiln: " + err.Error())
		if fin.Success {
			fin.Success, fin.Error = false, err.Error()
		}
		return
	}
	// Outputs are stored and shown like logs: secrets masked.
	if masked, ok := logs.mask.maskValue(outputs).(map[string]any); ok {
		fin.Outputs = masked
	}
	if !fin.Success {
		return
	}
	artifacts, err := w.storeArtifacts(ctx, a.Artifacts, dir, logs)
	if err != nil {
		fail(err)
		return
	}
	fin.Artifacts = artifacts
}

// poke pokes a sensor in poke mode again every PokeInterval, holding the
// slot, until its condition is met, it fails, or its deadline would pass.
func (w *Worker) poke(ctx context.Context, a *wire.Assignment, req host.Request, logs *logStream, res host.Result, err error, fin *wire.Event) (host.Result, error) {
	for err == nil && res.PokeAgain {
		if !time.Now().Add(a.Sensor.PokeInterval).Before(a.Sensor.Deadline) {
			fin.SensorTimeout = true
			res.PokeAgain = false
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-time.After(a.Sensor.PokeInterval):
		}
		res, err = w.invoke(ctx, a.Plugin, req, logs)
	}
	return res, err
}

// invoke runs the try through the Runner, turning a panic into an error.
func (w *Worker) invoke(ctx context.Context, plugin string, req host.Request, logs *logStream) (res host.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("the runner panicked", "panic", p)
			err = fmt.Errorf("running plugin %s: panic: %v", plugin, p)
		}
	}()
	return w.cfg.Runner.Run(ctx, plugin, req, logs)
}

// outcome is how the try ended, for its finished event.
func outcome(ctx context.Context, res host.Result, err error) (ok bool, exitCode *int, msg string) {
	if ctx.Err() != nil && (err != nil || !res.Success) {
		var te *timeoutError
		var ce *cancelledError
		if cause := context.Cause(ctx); errors.As(cause, &te) || errors.As(cause, &ce) {
			return false, res.ExitCode, cause.Error()
		}
	}
	if err != nil {
		return false, nil, err.Error()
	}
	if res.Success {
		return true, res.ExitCode, ""
	}
	msg = res.Error
	if msg == "" {
		msg = "failed"
		if res.ExitCode != nil {
			msg = fmt.Sprintf("exited with code %d", *res.ExitCode)
		}
	}
	return false, res.ExitCode, msg
}

// heartbeat reports the try alive every interval until the returned stop
// is called; stop returns once no heartbeat is in flight.
func (w *Worker) heartbeat(ev *events, every time.Duration) (stop func()) {
	if every <= 0 {
		every = DefaultHeartbeat
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for n := int64(1); ; n++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(ev.ctx, every)
			if err := ev.publish(ctx, ev.event(wire.EventHeartbeat), n); err != nil {
				ev.log.Warn("a heartbeat was lost", "error", err)
			}
			cancel()
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// outputPath names a try's $KILN_OUTPUT file. The file is not created
// here: most tasks write no outputs, and creating and removing a file took
// a fifth of the worker's CPU time for small tasks. The name is random, so
// in a shared folder such as /tmp nobody can plant a file or a symlink
// there before the task writes to it.
func (w *Worker) outputPath() string {
	return filepath.Join(w.cfg.DataDir, "kiln-output-"+rand.Text())
}

// taskEnv is base overridden by the assignment's env, then by extra
// KEY=VALUE strings, without duplicate keys.
func taskEnv(base []string, env map[string]string, extra ...string) []string {
	out := make([]string, 0, len(base)+len(env)+len(extra))
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		set(kv)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		set(k + "=" + env[k])
	}
	for _, kv := range extra {
		set(kv)
	}
	return out
}

// doubleAck acks an assignment and waits for JetStream to confirm it.
func (w *Worker) doubleAck(m *nats.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	_, err := w.nc.RequestWithContext(ctx, m.Reply, []byte("+ACK"))
	return err
}

// handBack returns an assignment this worker will not run to the queue at
// once, for another worker.
func (w *Worker) handBack(m *nats.Msg) { w.reply(m, "-NAK") }

// reply answers an assignment (ack, nak, term) without waiting. The
// subscription it came through may be gone, so the worker's connection
// sends it.
func (w *Worker) reply(m *nats.Msg, body string) {
	if m.Reply != "" {
		_ = w.nc.Publish(m.Reply, []byte(body))
	}
}
