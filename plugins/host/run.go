package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// exitWait bounds how long a failed call waits for its plugin process to be
// seen exiting before the failure is taken as something else than a crash.
const exitWait = 2 * time.Second

// Request is one try of one task.
type Request struct {
	// With holds the task's plugin parameters, templates rendered.
	With map[string]any
	// Env is the task's whole environment as KEY=VALUE strings: nothing of
	// the worker's or the plugin's own environment is added to it.
	Env []string
	// WorkDir is the task's working directory; empty means the plugin's.
	WorkDir string
	// Try identifies the try (dag, run, task, try number) in plugin logs.
	Try string
	// TaskEnv is the part of Env that Kiln and the DAG set, without the
	// worker's own environment: what a plugin that runs the task somewhere
	// else (a container) passes on.
	TaskEnv []string
}

// Result is how a task ended.
type Result struct {
	Success bool
	// ExitCode is the task process's exit code, when it exited on its own.
	ExitCode *int
	// Error says why the task failed; empty on success.
	Error string
	// PokeAgain reports that a sensor's condition is not met yet: the
	// sensor is to be poked again later (docs/dag-format.md#sensors). Success is then false,
	// and Error may say what is still awaited.
	PokeAgain bool
	// Build is the build of the plugin that ran the task; zero when the
	// plugin did not launch.
	Build Build
	// Facts are what the plugin reported about the environment the task
	// ran in (docs/reproducibility.md#plugin-facts), invalid keys and values dropped.
	Facts map[string]string
}

// Build identifies the build of a plugin that ran a task.
type Build struct {
	// Version is what the plugin's Describe reported; "" if it failed.
	Version string
	// SHA256 is the hex SHA-256 of the plugin's executable, hashed once
	// per launch of the process (and once per file content and host).
	SHA256 string
}

// Info describes a plugin.
type Info struct {
	Name    string
	Version string
	Schema  []byte // JSON Schema of the `with` parameters
	Sensor  bool
}

// Run runs one task through the named plugin, writing its log (stdout and
// stderr merged, in order) to log as it streams. A task that fails, is
// cancelled through ctx, or dies with its plugin process ends in a Result
// with Success false; the reason is in Result.Error and, as a last line
// "kiln: REASON", in the log. So does a sensor whose condition is not met
// yet, with Result.PokeAgain set. Run returns an error only when the host could
// not run the task at all (an unknown plugin, a plugin that does not
// launch, a closed Host) or could not write the log.
//
// Concurrent Runs share the plugin's process. Cancelling ctx cancels the
// call, and the plugin kills the task (for the shell plugin, its whole
// process group); Run returns without waiting for that to finish. The
// process is then retired: it takes no new task and is killed once the
// tasks still running on it end, so a plugin that ignores cancellation
// cannot hold on to its stuck work.
func (h *Host) Run(ctx context.Context, plugin string, req Request, log io.Writer) (Result, error) {
	with := []byte("{}")
	if req.With != nil {
		var err error
		if with, err = json.Marshal(req.With); err != nil {
			return Result{}, fmt.Errorf("encoding parameters for plugin %s: %w", plugin, err)
		}
	}
	lw := &lineWriter{w: log, atStart: true}
	if err := ctx.Err(); err != nil {
		return lw.ended(fmt.Sprintf("task cancelled before it started: %v", context.Cause(ctx)))
	}
	inst, err := h.instance(plugin)
	if err != nil {
		return Result{}, err
	}
	defer inst.release()
	res, err := h.run(ctx, inst, plugin, with, req, lw)
	res.Build = inst.build
	return res, err
}

// run is Run once the plugin's process is there.
func (h *Host) run(ctx context.Context, inst *instance, plugin string, with []byte, req Request, lw *lineWriter) (Result, error) {
	// A task cancelled or timed out may have left the plugin stuck: it may
	// ignore cancellation, hang or print without end. Nothing here can
	// tell, so its process takes no more tasks and ends with those it
	// still runs.
	defer func() {
		if ctx.Err() != nil {
			h.log.Debug("retiring plugin process after a cancelled task", "plugin", plugin, "try", req.Try)
			inst.retire()
		}
	}()

	// The stream gets ctx's cancellation but not its deadline: a deadline
	// would travel to the plugin, which could end the stream a moment
	// before ctx itself is done here, and the try would read as failed by
	// the plugin instead of timed out.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel() // ends the stream on every way out, which stops the task
	defer context.AfterFunc(ctx, cancel)()
	stream, err := inst.stub.Run(sctx, &stagepb.RunRequest{
		With:    with,
		Env:     req.Env,
		WorkDir: req.WorkDir,
		TryKey:  req.Try,
		TaskEnv: req.TaskEnv,
	})
	if err != nil {
		return h.callFailed(ctx, inst, err, lw)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return lw.ended(fmt.Sprintf("plugin %s ended the task without a result", plugin))
			}
			return h.callFailed(ctx, inst, err, lw)
		}
		switch e := ev.Event.(type) {
		case *stagepb.RunEvent_Log:
			if _, err := lw.Write(e.Log); err != nil {
				cancel()
				return Result{Error: "writing the task log: " + err.Error()},
					fmt.Errorf("writing the log of a plugin %s task: %w", plugin, err)
			}
		case *stagepb.RunEvent_Result:
			var code *int
			if e.Result.ExitCode != nil {
				c := int(e.Result.GetExitCode())
				code = &c
			}
			facts := checkFacts(e.Result.GetFacts())
			if e.Result.GetSuccess() {
				return Result{Success: true, ExitCode: code, Facts: facts}, nil
			}
			msg := e.Result.GetError()
			switch {
			case msg != "":
			case e.Result.GetPokeAgain():
				msg = "condition not met yet"
			default:
				msg = fmt.Sprintf("plugin %s reported a failure without a reason", plugin)
			}
			r, err := lw.ended(msg)
			r.ExitCode = code
			r.PokeAgain = e.Result.GetPokeAgain()
			r.Facts = facts
			return r, err
		}
	}
}

// maxFactValue bounds one fact's value; factKey is what a key must be.
const maxFactValue = 1 << 10

var factKey = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// maxFacts bounds the facts kept from one result.
const maxFacts = 32

// checkFacts keeps the facts a plugin reported that are well formed, so a
// plugin cannot fill the store through its results.
func checkFacts(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(in), maxFacts))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		if v := in[k]; len(out) < maxFacts && factKey.MatchString(k) && len(v) <= maxFactValue && utf8.ValidString(v) {
			out[k] = v
		}
	}
	return out
}

// lineWriter writes a task's log and knows whether it ends a line, so that
// what the host adds starts on a line of its own.
type lineWriter struct {
	w       io.Writer
	atStart bool
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		lw.atStart = p[len(p)-1] == '\n'
	}
	return lw.w.Write(p)
}

// ended returns a failed Result with msg, which also ends the log as a
// "kiln: msg" line.
func (lw *lineWriter) ended(msg string) (Result, error) {
	line := "kiln: " + msg + "\n"
	if !lw.atStart {
		line = "\n" + line
	}
	if _, err := io.WriteString(lw.w, line); err != nil {
		return Result{Error: msg}, fmt.Errorf("writing the task log: %w", err)
	}
	return Result{Error: msg}, nil
}

// callFailed turns a failed Run call into the task's Result: cancelled by
// ctx, the plugin crashed, or the plugin refused the call.
func (h *Host) callFailed(ctx context.Context, inst *instance, err error, lw *lineWriter) (Result, error) {
	if ctx.Err() != nil {
		return lw.ended(fmt.Sprintf("task cancelled: %v", context.Cause(ctx)))
	}
	if h.isClosed() {
		return lw.ended(fmt.Sprintf("plugin %s: the plugin host closed while the task ran", inst.name))
	}
	if crash, ok := inst.crashed(err); ok {
		h.log.Debug("plugin crashed", "plugin", inst.name, "error", err)
		return lw.ended(crash)
	}
	return lw.ended(fmt.Sprintf("plugin %s: %s", inst.name, status.Convert(err).Message()))
}

// crashed reports whether err, from a call to the plugin, means its process
// died, and says so with the end of what it wrote to stderr.
func (inst *instance) crashed(err error) (string, bool) {
	if status.Code(err) != codes.Unavailable {
		return "", false
	}
	// The call fails as soon as the connection drops; the process is seen
	// to exit once go-plugin has read the rest of its stderr.
	deadline := time.Now().Add(exitWait)
	for !inst.client.Exited() {
		if time.Now().After(deadline) {
			inst.broken.Store(true) // alive but unreachable: relaunch it
			return "", false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Sprintf("plugin %s crashed: %s", inst.name, inst.stderr.crashReport()), true
}

// Describe returns what the named plugin says about itself.
func (h *Host) Describe(ctx context.Context, plugin string) (Info, error) {
	inst, err := h.instance(plugin)
	if err != nil {
		return Info{}, err
	}
	defer inst.release()
	info, err := inst.stub.Describe(ctx, &stagepb.DescribeRequest{})
	if err != nil {
		if ctx.Err() == nil {
			if crash, ok := inst.crashed(err); ok {
				return Info{}, errors.New(crash)
			}
		}
		return Info{}, fmt.Errorf("describing plugin %s: %w", plugin, err)
	}
	return Info{
		Name:    info.GetName(),
		Version: info.GetVersion(),
		Schema:  info.GetSchema(),
		Sensor:  info.GetSensor(),
	}, nil
}
