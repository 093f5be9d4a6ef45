package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/shell"
)

// pluginExe is the wordcount plugin, built by TestMain as a user builds it.
var pluginExe string

// TestMain builds the plugin, and makes this test binary serve kiln's shell
// plugin instead of running the tests, for the example DAG's other tasks.
func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){"shell": shell.Main}, func(dir string) (err error) {
		pluginExe, err = plugintest.Build(dir, "kiln-plugin-wordcount", ".")
		return err
	})
}

// newHost returns a host that runs the built plugin as "wordcount", and
// kiln's shell plugin as "shell".
func newHost(t testing.TB) *host.Host {
	t.Helper()
	return plugintest.NewHost(t, func(name string) (*exec.Cmd, error) {
		switch name {
		case "wordcount":
			return exec.Command(pluginExe), nil
		case "shell":
			return plugintest.SelfCommand(name), nil
		}
		return nil, fmt.Errorf("%w %q", host.ErrUnknownPlugin, name)
	})
}

// runTask runs one task with a fresh $KILN_OUTPUT and returns its result,
// log and outputs.
func runTask(t *testing.T, h *host.Host, plugin string, req host.Request) (host.Result, string, map[string]string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "outputs")
	req.Env = append(slices.Clip(req.Env), "KILN_OUTPUT="+out, "PATH="+os.Getenv("PATH"))
	var log plugintest.LogBuffer
	res, err := h.Run(context.Background(), plugin, req, &log)
	if err != nil {
		t.Fatalf("running %s %v: %v", plugin, req.With, err)
	}
	data, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			t.Fatalf("%s wrote a bad outputs line %q", plugin, line)
		}
		outputs[k] = v
	}
	return res, log.String(), outputs
}

func TestDescribe(t *testing.T) {
	info, err := newHost(t).Describe(context.Background(), "wordcount")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "wordcount" || info.Version != "1.0.0" || info.Sensor {
		t.Errorf("Describe = %+v", info)
	}
	var s struct{ Required []string }
	if err := json.Unmarshal(info.Schema, &s); err != nil || !slices.Equal(s.Required, []string{"path"}) {
		t.Errorf("schema %s: required = %v (%v), want [path]", info.Schema, s.Required, err)
	}
	if _, err := dag.CompileSchemaJSON(info.Schema); err != nil {
		t.Errorf("kiln does not take the schema: %v", err)
	}
}

func TestCount(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	tests := []struct {
		name, content string
		words, lines  string
	}{
		{"empty", "", "0", "0"},
		{"one line", "hello world\n", "2", "1"},
		{"no final newline", "a b\nc", "3", "1"},
		{"white space runs", "  the\tquick \n\n brown\r\nfox  \n", "4", "4"},
		{"unicode", "grüße an\u00a0alle\u2003und\n", "4", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".txt")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			res, log, outputs := runTask(t, h, "wordcount", host.Request{With: map[string]any{"path": path}})
			if !res.Success {
				t.Fatalf("%+v, log %q", res, log)
			}
			want := map[string]string{"words": tt.words, "lines": tt.lines}
			if !maps.Equal(outputs, want) {
				t.Errorf("outputs = %v, want %v", outputs, want)
			}
			wantLog := fmt.Sprintf("counting the words and lines of %s\n%s words, %s lines\n", path, tt.words, tt.lines)
			if log != wantLog {
				t.Errorf("log = %q, want %q", log, wantLog)
			}
		})
	}

	// A relative path is the task's working directory's.
	res, _, outputs := runTask(t, h, "wordcount", host.Request{With: map[string]any{"path": "one_line.txt"}, WorkDir: dir})
	if !res.Success || outputs["words"] != "2" {
		t.Errorf("relative path: %+v, outputs %v", res, outputs)
	}
}

func TestFailures(t *testing.T) {
	h := newHost(t)
	tests := []struct {
		name    string
		with    map[string]any
		wantErr string
	}{
		{"missing file", map[string]any{"path": "/nonexistent/file.txt"}, "open /nonexistent/file.txt: no such file or directory"},
		{"no path", map[string]any{}, "path is required"},
		{"unknown parameter", map[string]any{"path": "x", "pth": "y"}, `invalid parameters: unknown field "pth"`},
		{"wrong type", map[string]any{"path": 3}, "invalid parameters: path: got a JSON number, want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, log, outputs := runTask(t, h, "wordcount", host.Request{With: tt.with})
			if res.Success || res.Error != tt.wantErr || len(outputs) != 0 {
				t.Errorf("got %+v with outputs %v, want a failure %q", res, outputs, tt.wantErr)
			}
			if !strings.HasSuffix(log, "kiln: "+tt.wantErr+"\n") {
				t.Errorf("log %q does not end with the error", log)
			}
		})
	}
}

// TestExampleDAG loads dags/wordcount.yaml as kiln would, with the plugin's
// schema from Describe, and runs its tasks in order through the plugins,
// each seeing its upstream tasks' outputs.
func TestExampleDAG(t *testing.T) {
	h := newHost(t)
	info, err := h.Describe(context.Background(), "wordcount")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := dag.CompileSchemaJSON(info.Schema)
	if err != nil {
		t.Fatal(err)
	}
	catalog := plugins.Builtin()
	catalog[info.Name] = &dag.PluginSpec{Name: info.Name, Sensor: info.Sensor, Schema: schema, SchemaJSON: info.Schema}
	d, err := dag.LoadFile("dags/wordcount.yaml", dag.Options{Plugins: catalog})
	if err != nil {
		t.Fatalf("loading the example DAG: %v", err)
	}

	workDir := t.TempDir()
	logical := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	outputs := map[string]any{}
	logs := map[string]string{}
	for _, task := range d.Tasks {
		for _, up := range task.DependsOn {
			if _, ok := outputs[up]; !ok {
				t.Fatalf("task %s comes before its upstream %s in the file", task.ID, up)
			}
		}
		// The tasks share one folder here, so an input is its upstream
		// task's artifact where that task wrote it.
		inputs := map[string]string{}
		for _, in := range task.Inputs {
			inputs[in.Name] = filepath.Join(workDir, d.Task(in.Task).Artifacts[in.Artifact])
		}
		values := dag.Values{DAGID: d.ID, TaskID: task.ID, RunID: "manual__test", TryNumber: 1,
			LogicalDate: logical, DataIntervalStart: logical, DataIntervalEnd: logical, Outputs: outputs, Inputs: inputs}
		with, err := dag.RenderValue(task.With, values.Data(time.UTC))
		if err != nil {
			t.Fatalf("rendering task %s: %v", task.ID, err)
		}
		req := host.Request{With: with.(map[string]any), WorkDir: workDir,
			Try: fmt.Sprintf("%s/manual__test/%s#1", d.ID, task.ID)}
		res, log, out := runTask(t, h, task.Plugin, req)
		if !res.Success {
			t.Fatalf("task %s: %+v, log %q", task.ID, res, log)
		}
		written := map[string]any{}
		for k, v := range out {
			written[k] = v
		}
		outputs[task.ID] = written
		logs[task.ID] = log
	}
	// The shell stage logs the command it runs first.
	if want := "kiln: running: echo \"wordcount-example.txt has 9 words on 3 lines\"\nwordcount-example.txt has 9 words on 3 lines\n"; logs["report"] != want {
		t.Errorf("report's log = %q, want %q", logs["report"], want)
	}
}
