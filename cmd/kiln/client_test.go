package main

// In-process tests of the commands that talk to a server: each runs the
// cobra commands against an httptest server that serves the real API
// (package ui) of a real Kiln (internal/kilntest), and checks stdout,
// stderr and the exit code as main's run would produce them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// testChurnDAG starts far ahead, so that the scheduler makes no run of it
// while the tests run. Train holds at the gate "train" when the test made
// one, and fails in runs of region us.
const testChurnDAG = `
id: churn
description: Train the churn model
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2099-01-01
tags: [ml, churn]
params:
  sample_frac: {type: number, default: 1.0, minimum: 0, maximum: 1, description: Fraction of rows}
  region: {type: string, enum: [eu, us], default: eu}
  features: {type: array, default: [age]}
tasks:
  - id: extract
    plugin: shell
    with: {command: echo extract}
  - id: train
    depends_on: [extract]
    plugin: shell
    with: {command: "if [ -p gates/train ]; then read gate < gates/train; fi; test {{ .params.region }} = eu"}
    retries: 2
    retry_delay: 0s
  - id: report
    depends_on: [train]
    plugin: shell
    with: {command: echo report}
`

const testRequiredDAG = `
id: needs
params:
  n: {type: integer, minimum: 1}
tasks:
  - id: only
    plugin: shell
    with: {command: "true"}
`

// The run object of docs/cli.md#json-output and its task entries, keys sorted.
var (
	specRunKeys  = []string{"dag_id", "dag_version", "data_interval_end", "data_interval_start", "end_date", "logical_date", "params", "run_id", "run_type", "start_date", "state", "tasks"}
	specTaskKeys = []string{"duration_s", "end_date", "start_date", "state", "task_id", "try_number"}
)

// cliEnv is a real Kiln with the churn and needs DAGs and more, its API,
// and KILN_SERVER pointing at it.
type cliEnv struct {
	t  *testing.T
	k  *kilntest.Kiln
	mu sync.Mutex
	// auth holds the Authorization header of every request, requests the
	// method and path.
	auth, requests []string
	// served, when set, is called with each request once it is answered.
	served func(*http.Request)
}

// onServed sets a function called with each request once it is answered.
func (e *cliEnv) onServed(fn func(*http.Request)) {
	e.mu.Lock()
	e.served = fn
	e.mu.Unlock()
}

func newCLIEnv(t *testing.T, dags ...string) *cliEnv {
	t.Helper()
	e := &cliEnv{t: t, k: kilntest.New(t, append([]string{testChurnDAG, testRequiredDAG}, dags...)...)}
	e.serve()
	return e
}

// serve serves the API of e's Kiln, noting the requests, at KILN_SERVER.
func (e *cliEnv) serve() {
	t := e.t
	api := ui.New(e.k.Scheduler, ui.Options{}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.auth = append(e.auth, r.Header.Get("Authorization"))
		e.requests = append(e.requests, r.Method+" "+r.URL.Path)
		e.mu.Unlock()
		api.ServeHTTP(w, r)
		e.mu.Lock()
		served := e.served
		e.mu.Unlock()
		if served != nil {
			served(r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("KILN_SERVER", srv.URL)
	t.Setenv("KILN_TOKEN", "")
}

// waitRequest waits until the API has been asked for request (method and
// path): a barrier on what a command running in the background has seen.
func (e *cliEnv) waitRequest(request string) {
	e.t.Helper()
	e.k.WaitFor(request, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return slices.Contains(e.requests, request)
	})
}

// trigger makes a manual run of a DAG at a logical date (RFC 3339) through
// the scheduler.
func (e *cliEnv) trigger(dagID, date string, params map[string]any) *store.Run {
	e.t.Helper()
	ld, err := time.Parse(time.RFC3339, date)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.k.Trigger(e.t.Context(), dagID, scheduler.TriggerRequest{LogicalDate: &ld, Params: params})
	if err != nil {
		e.t.Fatalf("triggering %s: %v", dagID, err)
	}
	return r
}

// run runs a kiln command line in-process and returns what it printed and
// its exit code, the way main's run reports them.
func (e *cliEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return runCLI(e.t, args...)
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := &cobra.Command{Use: "kiln", SilenceUsage: true, SilenceErrors: true}
	dags := &cobra.Command{Use: "dags", Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	addServerDagsCommands(dags)
	dags.AddCommand(newDagsNextCmd())
	root.AddCommand(dags)
	addServerCommands(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	var ex *exitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintln(&errOut, "kiln:", ex.msg)
		}
		code = ex.code
	default:
		fmt.Fprintln(&errOut, "kiln:", err)
		code = 2
	}
	return out.String(), errOut.String(), code
}

// wantExit fails the test unless the command exited with code and its
// stderr mentions every substring.
func wantExit(t *testing.T, gotCode int, stderr string, code int, substrings ...string) {
	t.Helper()
	if gotCode != code {
		t.Errorf("exit code = %d, want %d (stderr %q)", gotCode, code, stderr)
	}
	for _, s := range substrings {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr %q does not mention %q", stderr, s)
		}
	}
}

// jsonKeys returns the sorted keys of a JSON object.
func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v", raw, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkRunJSON checks that raw is a run object exactly as docs/cli.md#json-output shows it.
func checkRunJSON(t *testing.T, raw []byte) ui.Run {
	t.Helper()
	if got := jsonKeys(t, raw); !slices.Equal(got, specRunKeys) {
		t.Errorf("run keys = %v, want %v", got, specRunKeys)
	}
	var tasks struct{ Tasks []json.RawMessage }
	if err := json.Unmarshal(raw, &tasks); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks.Tasks {
		if got := jsonKeys(t, task); !slices.Equal(got, specTaskKeys) {
			t.Errorf("task keys = %v, want %v", got, specTaskKeys)
		}
	}
	var run ui.Run
	if err := json.Unmarshal(raw, &run); err != nil {
		t.Fatal(err)
	}
	return run
}

func TestServerAndTokenFlags(t *testing.T) {
	e := newCLIEnv(t)
	if _, stderr, code := e.run("pools", "list"); code != 0 {
		t.Fatalf("pools list: exit %d: %s", code, stderr)
	}
	t.Setenv("KILN_TOKEN", "from-env")
	e.run("pools", "list")
	e.run("pools", "list", "--token", "from-flag")
	e.mu.Lock()
	got := slices.Clone(e.auth)
	e.mu.Unlock()
	want := []string{"", "Bearer from-env", "Bearer from-flag"}
	if !slices.Equal(got, want) {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}

	// --server wins over $KILN_SERVER.
	t.Setenv("KILN_SERVER", "http://127.0.0.1:1")
	srv := httptest.NewServer(ui.New(e.k.Scheduler, ui.Options{}).Handler())
	defer srv.Close()
	if _, stderr, code := e.run("pools", "list", "--server", srv.URL); code != 0 {
		t.Errorf("--server: exit %d: %s", code, stderr)
	}
	_, stderr, code := e.run("pools", "list", "--server", "ftp://example.com")
	wantExit(t, code, stderr, 2, "--server", "ftp://example.com")
}

func TestServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("KILN_SERVER", url)
	for _, args := range [][]string{
		{"dags", "list"},
		{"trigger", "churn"},
		{"runs", "list"},
		{"tasks", "logs", "churn", "--run", "r", "--task", "t"},
		{"pools", "list"},
	} {
		_, stderr, code := runCLI(t, args...)
		wantExit(t, code, stderr, 1, url, "connection refused", "kiln standalone")
	}
}

func TestServerErrorWithoutJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream is down", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, stderr, code := runCLI(t, "pools", "list", "--server", srv.URL)
	wantExit(t, code, stderr, 1, "502", "upstream is down")
}

func TestServerCommandsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"dags", "list"}, {"dags", "show"}, {"dags", "pause"}, {"dags", "unpause"},
		{"trigger"}, {"runs"}, {"runs", "list"}, {"runs", "show"},
		{"tasks"}, {"tasks", "logs"}, {"tasks", "clear"},
		{"pools"}, {"pools", "list"}, {"pools", "set"}, {"pools", "delete"},
	} {
		stdout, stderr, code := runCLI(t, append(args, "-h")...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
		if len(args) > 1 || args[0] == "trigger" {
			if !strings.Contains(stdout, "--server") || !strings.Contains(stdout, "--token") {
				t.Errorf("%s -h does not mention --server and --token", strings.Join(args, " "))
			}
		}
	}
}
