package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pluginEnv is a machine with external plugins: the test plugin of
// plugins/registry installed as kiln-plugin-echo and kiln-plugin-liar in
// a plugins folder and as kiln-plugin-sensor in the only folder on PATH.
// HOME is empty so that the user's own ~/.kiln/plugins stays out of it.
type pluginEnv struct {
	dir, path string
	env       []string
}

func newPluginEnv(t *testing.T) *pluginEnv {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "testplugin")
	const pkg = "github.com/kilnhq/kiln/plugins/registry/testdata/testplugin"
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", exe, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	e := &pluginEnv{dir: t.TempDir(), path: t.TempDir()}
	for dir, names := range map[string][]string{e.dir: {"echo", "liar"}, e.path: {"sensor"}} {
		for _, name := range names {
			if err := os.Symlink(exe, filepath.Join(dir, "kiln-plugin-"+name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, kv := range kilnEnv() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "HOME=") {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "PATH="+e.path, "HOME="+t.TempDir(), "TZ=UTC")
	return e
}

// run runs the kiln binary in the package folder with the environment's
// variables and extra ones.
func (e *pluginEnv) run(t *testing.T, extraEnv []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	cmd.Env = append(slices.Clone(e.env), extraEnv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("kiln %s: did not finish within %v", strings.Join(args, " "), runTimeout)
	case errors.As(err, &exit):
		exitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), exitCode
}

type pluginJSON struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Source  string          `json:"source"`
	Sensor  bool            `json:"sensor"`
	Schema  json.RawMessage `json:"schema"`
	Error   string          `json:"error"`
}

func TestPluginsListJSON(t *testing.T) {
	e := newPluginEnv(t)
	stdout, stderr, code := e.run(t, nil, "plugins", "list", "--plugins", e.dir, "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	var list []pluginJSON
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]pluginJSON{}
	var names []string
	for i, p := range list {
		byName[p.Name] = p
		names = append(names, p.Name)
		_, warned := raw[i]["warning"] // where no Docker Engine answers
		if len(raw[i]) != 6 && !(p.Name == "docker" && warned && len(raw[i]) == 7) {
			t.Errorf("plugin %s has fields %v, want name version source sensor schema error", p.Name, slices.Sorted(maps.Keys(raw[i])))
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("not sorted by name: %v", names)
	}

	if p := byName["shell"]; p.Source != "builtin" || p.Version == "" || len(p.Schema) == 0 || p.Error != "" {
		t.Errorf("shell = %+v, want the built-in with version and schema", p)
	}
	echo := byName["echo"]
	if echo.Source != filepath.Join(e.dir, "kiln-plugin-echo") || echo.Version != "1.2.3" || echo.Sensor || echo.Error != "" {
		t.Errorf("echo = %+v, want version 1.2.3 from the plugins folder", echo)
	}
	var schema struct {
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(echo.Schema, &schema); err != nil || !slices.Equal(schema.Required, []string{"message"}) {
		t.Errorf("echo schema = %s, want its own", echo.Schema)
	}
	if p := byName["sensor"]; p.Source != filepath.Join(e.path, "kiln-plugin-sensor") || !p.Sensor || string(p.Schema) != "null" {
		t.Errorf("sensor = %+v, want the sensor from PATH without schema", p)
	}
	if p := byName["liar"]; !strings.Contains(p.Error, `the plugin calls itself "someone_else"`) {
		t.Errorf("liar = %+v, want the name mismatch as its error", p)
	}

	// $KILN_PLUGINS is the default folder.
	stdout, _, _ = e.run(t, []string{"KILN_PLUGINS=" + e.dir}, "plugins", "list", "--json")
	if !strings.Contains(stdout, `"name": "echo"`) {
		t.Errorf("with $KILN_PLUGINS: echo not listed:\n%s", stdout)
	}
}

func TestPluginsListTable(t *testing.T) {
	e := newPluginEnv(t)
	stdout, stderr, code := e.run(t, nil, "plugins", "list", "--plugins", e.dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	space := regexp.MustCompile(` {2,}`)
	var rows []string
	for _, l := range lines {
		rows = append(rows, space.ReplaceAllString(strings.TrimSpace(l), " | "))
	}
	for _, want := range []string{
		"NAME | VERSION | SENSOR | SOURCE",
		"echo | 1.2.3 | no | " + filepath.Join(e.dir, "kiln-plugin-echo"),
		"liar | - | - | " + filepath.Join(e.dir, "kiln-plugin-liar"),
		"sensor | 1.2.3 | yes | " + filepath.Join(e.path, "kiln-plugin-sensor"),
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("no row %q in\n%s", want, stdout)
		}
	}
	if want := "kiln: plugin liar (" + filepath.Join(e.dir, "kiln-plugin-liar") + `) did not load: the plugin calls itself "someone_else"`; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr = %q, want it to start with %q", stderr, want)
	}

	_, stderr, code = e.run(t, nil, "plugins", "list", "--plugins", filepath.Join(e.dir, "none"))
	if code != 2 || !strings.Contains(stderr, "--plugins "+filepath.Join(e.dir, "none")+": no such folder") {
		t.Errorf("missing --plugins folder: exit %d, stderr %q; want 2 and no such folder", code, stderr)
	}
}

// TestPluginsListSaysWhenNoDockerEngine lists the docker stage as built in
// but unable to run its tasks where no Docker Engine answers.
func TestPluginsListSaysWhenNoDockerEngine(t *testing.T) {
	e := newPluginEnv(t)
	sock := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	_, stderr, code := e.run(t, []string{"DOCKER_HOST=" + sock}, "plugins", "list", "--plugins", e.dir)
	if want := "kiln: plugin docker: its tasks cannot run here now: no Docker Engine answers at " + sock; code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 0 and %q", code, stderr, want)
	}
	stdout, _, _ := e.run(t, []string{"DOCKER_HOST=" + sock}, "plugins", "list", "--plugins", e.dir, "--json")
	var list []struct{ Name, Error, Warning string }
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.Name == "docker" && (p.Error != "" || !strings.Contains(p.Warning, "no Docker Engine answers at "+sock)) {
			t.Errorf("docker = %+v, want loaded, with a warning naming the socket", p)
		}
	}
	// Checking a DAG's docker tasks needs no Engine.
	example, err := filepath.Abs("../../examples/dags/container_report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run(t, []string{"DOCKER_HOST=" + sock}, "dags", "validate", example); code != 0 {
		t.Errorf("dags validate without an Engine: exit %d, stderr %q", code, stderr)
	}
}

// TestDagsValidateWithPlugins checks `kiln dags validate` against external
// plugins: their schemas check `with`, and a plugin that did not load is
// unknown with the reason.
func TestDagsValidateWithPlugins(t *testing.T) {
	e := newPluginEnv(t)
	dags := t.TempDir()
	writeFiles(t, dags, map[string]string{
		"good.yaml": `tasks:
  - id: say
    plugin: echo
    with: {message: hello}
  - id: wait
    plugin: sensor
    mode: poke
`,
	})
	stdout, stderr, code := e.run(t, nil, "dags", "validate", "--plugins", e.dir, dags)
	if code != 0 || stdout != "ok: 1 DAG(s) in 1 file(s)\n" {
		t.Errorf("valid DAG: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Without the folder, echo is unknown; sensor, on PATH, is not.
	good := filepath.Join(dags, "good.yaml")
	_, stderr, code = e.run(t, nil, "dags", "validate", good)
	if want := good + ":3:13: unknown plugin \"echo\"\n"; code != 2 || !strings.HasPrefix(stderr, want) {
		t.Errorf("without --plugins: exit %d, stderr %q, want 2 and %q", code, stderr, want)
	}

	writeFiles(t, dags, map[string]string{
		"bad.yaml": `tasks:
  - id: say
    plugin: echo
    with: {message: 42, loud: true}
  - id: fib
    plugin: liar
`,
	})
	bad := filepath.Join(dags, "bad.yaml")
	_, stderr, code = e.run(t, nil, "dags", "validate", "--plugins", e.dir, bad)
	want := []string{
		bad + `:4:21: plugin echo: with.message: got number, want string`,
		bad + `:4:25: plugin echo: with: unknown key "loud"`,
		bad + `:6:13: unknown plugin "liar": ` + filepath.Join(e.dir, "kiln-plugin-liar") + ` did not load: the plugin calls itself "someone_else", but its file name makes it "liar": rename the file kiln-plugin-someone_else or fix the plugin's name`,
		`kiln: 3 problem(s) found; 0 valid DAG(s) in 1 file(s)`,
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")); code != 2 || diff != "" {
		t.Errorf("exit %d, want 2; stderr (-want +got):\n%s", code, diff)
	}
}

func TestPluginsHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"plugins"}},
		{[]string{"plugins", "-h"}, []string{"kiln plugins [command]", "list"}},
		{[]string{"plugins", "list", "-h"}, []string{"kiln plugins list [--plugins DIR] [--json]", "--plugins", "$KILN_PLUGINS", "~/.kiln/plugins", "--json"}},
		{[]string{"dags", "validate", "-h"}, []string{"--plugins"}},
		{[]string{"dags", "next", "-h"}, []string{"--plugins"}},
		{[]string{"standalone", "-h"}, []string{"--plugins"}},
		{[]string{"server", "-h"}, []string{"--plugins"}},
		{[]string{"worker", "-h"}, []string{"--plugins"}},
	} {
		stdout, stderr, code := runKiln(t, tt.args...)
		if code != 0 || stderr != "" {
			t.Errorf("kiln %s: exit %d, stderr %q", strings.Join(tt.args, " "), code, stderr)
		}
		for _, want := range tt.want {
			if !strings.Contains(stdout, want) {
				t.Errorf("kiln %s does not mention %q:\n%s", strings.Join(tt.args, " "), want, stdout)
			}
		}
	}
}
