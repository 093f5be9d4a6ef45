package main_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

const diffDAG = `id: diffed
params:
  rows: {type: integer, default: 10}
tasks:
  - {id: extract, plugin: shell, with: {command: "echo rows={{ .params.rows }} >> $KILN_OUTPUT"}}
  - {id: report, plugin: shell, depends_on: [extract], with: {command: "echo report"}}
`

// golden compares got, its run ids and version hashes named, with
// testdata/runsdiff/NAME.golden.
func golden(t *testing.T, name, got string, names map[string]string) {
	t.Helper()
	for real, alias := range names {
		got = strings.ReplaceAll(got, real, alias)
	}
	path := filepath.Join("testdata", "runsdiff", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (go test -run %s -update writes it): %v", path, t.Name(), err)
	}
	if got != string(want) {
		t.Errorf("kiln runs diff (%s) differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestRunsDiff: identical runs (exit 0), a param change and a DAG edit
// (exit 1, the source diff shown), --json, and an unknown run (exit 2).
func TestRunsDiff(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"dags/diffed.yaml": diffDAG})
	s := startStandalone(t, filepath.Join(root, "dags"), filepath.Join(root, "data"))
	runA := trigger(t, s, "diffed", true)
	runB := trigger(t, s, "diffed", true)
	v1 := showRun(t, s, "diffed", runA).DAGVersion
	names := map[string]string{runA: "<RUN_A>", runB: "<RUN_B>", v1: "<V1>", v1[:12]: "<V1>"}

	stdout, stderr, code := s.kiln(t, "runs", "diff", runA, runB, "--dag", "diffed")
	if code != 0 {
		t.Errorf("identical runs: exit code %d, stderr %q; want 0", code, stderr)
	}
	golden(t, "identical", stdout, names)

	stdout, _, _ = s.kiln(t, "trigger", "diffed", "--param", "rows=20", "--wait", "--json")
	var r struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("trigger: %v\n%s", err, stdout)
	}
	names[r.RunID] = "<RUN_C>"
	stdout, stderr, code = s.kiln(t, "runs", "diff", runA, r.RunID, "--dag", "diffed")
	if code != 1 {
		t.Errorf("a param change: exit code %d, stderr %q; want 1", code, stderr)
	}
	golden(t, "params", stdout, names)

	edited := strings.Replace(diffDAG, `command: "echo report"`, `command: "echo report v2"`, 1)
	writeFiles(t, root, map[string]string{"dags/diffed.yaml": edited})
	waitFor(t, "the edit to load", func() bool {
		resp, err := http.Get(s.URL + "/api/v1/dags/diffed/versions")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var vs []struct{}
		return json.NewDecoder(resp.Body).Decode(&vs) == nil && len(vs) == 2
	})
	// The version is stored a moment before the scheduler runs it.
	var runD, v2 string
	waitFor(t, "a run on the edited version", func() bool {
		runD = trigger(t, s, "diffed", true)
		v2 = showRun(t, s, "diffed", runD).DAGVersion
		return v2 != v1
	})
	names[runD], names[v2], names[v2[:12]] = "<RUN_D>", "<V2>", "<V2>"
	stdout, stderr, code = s.kiln(t, "runs", "diff", runA, runD, "--dag", "diffed")
	if code != 1 {
		t.Errorf("a DAG edit: exit code %d, stderr %q; want 1", code, stderr)
	}
	golden(t, "edit", stdout, names)

	stdout, _, code = s.kiln(t, "runs", "diff", runA, runD, "--dag", "diffed", "--json")
	var d struct {
		Same       bool `json:"same"`
		DAGVersion struct {
			A, B, Diff string
		} `json:"dag_version"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); err != nil || code != 1 || d.Same || d.DAGVersion.A != v1 || d.DAGVersion.B != v2 ||
		!strings.Contains(d.DAGVersion.Diff, `+  - {id: report, plugin: shell, depends_on: [extract], with: {command: "echo report v2"}}`) {
		t.Errorf("--json: exit code %d, %+v (%v)\n%s", code, d, err, stdout)
	}

	for _, args := range [][]string{
		{"runs", "diff", runA, "manual__1999-01-01T00:00:00Z", "--dag", "diffed"},
		{"runs", "diff", runA, runB, "--dag", "nope"},
		{"runs", "diff", runA, runB},
	} {
		_, stderr, code := s.kiln(t, args...)
		if code != 2 || stderr == "" {
			t.Errorf("kiln %s: exit code %d, stderr %q; want 2 and why", strings.Join(args, " "), code, stderr)
		}
	}
	if _, stderr, _ := s.kiln(t, "runs", "diff", runA, "manual__1999-01-01T00:00:00Z", "--dag", "diffed"); !strings.Contains(stderr, "manual__1999-01-01T00:00:00Z") {
		t.Errorf("an unknown run is not named: %q", stderr)
	}
}

// buildWordcount builds the example wordcount plugin into dir with extra
// go build flags; different flags make a different binary.
func buildWordcount(t *testing.T, dir string, flags ...string) {
	t.Helper()
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", filepath.Join(dir, "kiln-plugin-wordcount"), "../../examples/plugins/wordcount")
	if out, err := exec.CommandContext(t.Context(), "go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build of the wordcount plugin: %v\n%s", err, out)
	}
}

// TestRunsDiffPluginUpgrade: the same DAG run before and after its
// external plugin's binary changed differs in the plugin's hash (exit 1).
func TestRunsDiffPluginUpgrade(t *testing.T) {
	root := t.TempDir()
	plugins := filepath.Join(root, "plugins")
	buildWordcount(t, plugins)
	writeFiles(t, root, map[string]string{
		"words.txt":    "one two three\n",
		"dags/wc.yaml": "id: wc\ntasks:\n  - {id: count, plugin: wordcount, with: {path: " + filepath.Join(root, "words.txt") + "}}\n",
	})
	dags, data := filepath.Join(root, "dags"), filepath.Join(root, "data")
	s := startStandalone(t, dags, data, "--plugins", plugins)
	runA := trigger(t, s, "wc", true)
	stopStandalone(t, s)

	buildWordcount(t, plugins, "-ldflags", "-s -w") // an upgrade: another binary
	s = startStandalone(t, dags, data, "--plugins", plugins)
	runB := trigger(t, s, "wc", true)
	v := showRun(t, s, "wc", runA).DAGVersion
	stdout, stderr, code := s.kiln(t, "runs", "diff", runA, runB, "--dag", "wc")
	if code != 1 {
		t.Errorf("a plugin upgrade: exit code %d, stderr %q; want 1", code, stderr)
	}
	golden(t, "plugin", hexHash.ReplaceAllString(stdout, "<SHA256>"), map[string]string{runA: "<RUN_A>", runB: "<RUN_B>", v[:12]: "<V1>"})
}

var hexHash = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// stopStandalone stops a kiln standalone as Ctrl-C does and waits for it.
func stopStandalone(t *testing.T, s *standalone) {
	t.Helper()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	s.wait(t, runTimeout)
}
