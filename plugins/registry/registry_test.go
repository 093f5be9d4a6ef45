package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/registry"
)

const echoSchema = `{"type":"object","additionalProperties":false,"required":["message"],"properties":{"message":{"type":"string"},"times":{"type":"integer","minimum":1}}}`

// discover runs a discovery with a fake kiln executable and fails the test
// on error.
func discover(t *testing.T, cfg registry.Config) *registry.Registry {
	t.Helper()
	if cfg.Kiln == "" {
		cfg.Kiln = "/opt/kiln/bin/kiln"
	}
	r, err := cfg.Discover(t.Context())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return r
}

func entry(t *testing.T, r *registry.Registry, name string) registry.Entry {
	t.Helper()
	for _, e := range r.List() {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no plugin %q in %+v", name, r.List())
	return registry.Entry{}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("schema %q: %v", raw, err)
	}
	return b.String()
}

func TestDiscoverFolder(t *testing.T) {
	dir := install(t, t.TempDir(), "echo", "sensor")
	writeFile(t, filepath.Join(dir, "README.md"), 0o644) // not a plugin: ignored
	r := discover(t, registry.Config{Dirs: []string{dir}})

	var names []string
	for _, e := range r.List() {
		names = append(names, e.Name)
	}
	for name := range plugins.Builtin() {
		if !slices.Contains(names, name) {
			t.Errorf("built-in %q missing from %v", name, names)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("List not sorted by name: %v", names)
	}

	echo := entry(t, r, "echo")
	if got := compact(t, echo.Schema); got != echoSchema {
		t.Errorf("echo schema = %s, want %s", got, echoSchema)
	}
	echo.Schema = nil
	want := registry.Entry{Name: "echo", Version: "1.2.3", Source: filepath.Join(dir, "kiln-plugin-echo")}
	if diff := cmp.Diff(want, echo); diff != "" {
		t.Errorf("echo entry (-want +got):\n%s", diff)
	}
	sensor := entry(t, r, "sensor")
	if !sensor.Sensor || sensor.Schema != nil || sensor.Error != "" {
		t.Errorf("sensor entry = %+v, want a sensor without schema or error", sensor)
	}
	if spec, ok := r.Plugin("sensor"); !ok || !spec.Sensor || spec.Schema != nil {
		t.Errorf("Plugin(sensor) = %+v, %v; want a sensor accepting anything", spec, ok)
	}

	shell := entry(t, r, "shell")
	if shell.Source != registry.SourceBuiltin || shell.Version != plugins.BuiltinVersion("shell") || shell.Schema == nil {
		t.Errorf("shell entry = %+v, want the built-in with its version and schema", shell)
	}
	if w := r.Warnings(); len(w) > 0 {
		t.Errorf("Warnings = %q, want none", w)
	}
}

func TestBuiltinVersionDefaultsToKilns(t *testing.T) {
	r := discover(t, registry.Config{
		Builtins: dag.MapCatalog{"shell": plugins.Builtin()["shell"], "other": {Name: "other"}},
		Version:  "v9.9.9",
	})
	if got := entry(t, r, "other").Version; got != "v9.9.9" {
		t.Errorf("version of a built-in without its own = %q, want kiln's v9.9.9", got)
	}
	if got, want := entry(t, r, "shell").Version, plugins.BuiltinVersion("shell"); got != want {
		t.Errorf("shell version = %q, want its own %q", got, want)
	}
	if got := entry(t, discover(t, registry.Config{Builtins: dag.MapCatalog{"other": {Name: "other"}}}), "other").Version; got != registry.DefaultVersion {
		t.Errorf("version without Config.Version = %q, want %q", got, registry.DefaultVersion)
	}
}

func TestDiscoverPath(t *testing.T) {
	first := install(t, t.TempDir(), "echo")
	second := install(t, t.TempDir(), "echo", "sensor")
	folder := install(t, t.TempDir(), "sensor")
	path := strings.Join([]string{"relative/dir", first, filepath.Join(t.TempDir(), "missing"), second}, string(os.PathListSeparator))

	r := discover(t, registry.Config{Dirs: []string{folder}, Path: path})
	if got, want := entry(t, r, "echo").Source, filepath.Join(first, "kiln-plugin-echo"); got != want {
		t.Errorf("echo from %s, want the first on PATH, %s", got, want)
	}
	if got, want := entry(t, r, "sensor").Source, filepath.Join(folder, "kiln-plugin-sensor"); got != want {
		t.Errorf("sensor from %s, want the plugins folder's, %s", got, want)
	}
	if _, ok := r.Plugin("echo"); !ok {
		t.Error("Plugin(echo) unknown")
	}
}

func TestDiscoverSkipsNonExecutablesOnPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln-plugin-echo"), 0o644)
	r := discover(t, registry.Config{Path: dir})
	for _, e := range r.List() {
		if e.Name == "echo" {
			t.Errorf("non-executable file on PATH listed: %+v", e)
		}
	}
}

// TestDiscoverProblems checks that every plugin that cannot be used is
// listed with its reason, unknown to the loader, which explains why.
func TestDiscoverProblems(t *testing.T) {
	dir := install(t, t.TempDir(), "echo", "liar", "badschema", "quitter", "sleeper")
	writeFile(t, filepath.Join(dir, "kiln-plugin-noexec"), 0o644)
	// The script writes its stderr first: go-plugin kills a process as
	// soon as its first line on stdout is not a handshake, so what it
	// would write on stderr after that line may never be written.
	writeScript(t, filepath.Join(dir, "kiln-plugin-script"), "#!/bin/sh\necho oops >&2\necho hello\n", 0o755)
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "kiln-plugin-dangling")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := discover(t, registry.Config{Dirs: []string{dir}, Timeout: 2 * time.Second})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Discover took %v: the sleeper's timeout did not hold", took)
	}

	tests := []struct {
		name string
		want []string // substrings of the error
	}{
		{"liar", []string{`the plugin calls itself "someone_else", but its file name makes it "liar"`}},
		{"badschema", []string{"bad parameter schema: at /properties/n/minimum: got string, want number"}},
		{"quitter", []string{"launching plugin quitter: no go-plugin handshake: the process printed nothing on stdout; its stderr: quitter: cannot start: no config"}},
		{"sleeper", []string{"no answer within 2s: launching plugin sleeper: no go-plugin handshake"}},
		{"noexec", []string{"kiln-plugin-noexec is not executable"}},
		{"script", []string{`launching plugin script: no go-plugin handshake: the process printed "hello" on stdout; its stderr: oops`}},
		{"dangling", []string{"kiln-plugin-dangling: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entry(t, r, tt.name)
			if e.Source != filepath.Join(dir, "kiln-plugin-"+tt.name) {
				t.Errorf("Source = %q", e.Source)
			}
			for _, want := range tt.want {
				if !strings.Contains(e.Error, want) {
					t.Errorf("Error = %q, want it to mention %q", e.Error, want)
				}
			}
			if spec, ok := r.Plugin(tt.name); ok {
				t.Errorf("Plugin(%s) = %+v, want unknown", tt.name, spec)
			}
			if why := r.Explain(tt.name); !strings.HasPrefix(why, e.Source+" did not load: ") || strings.Contains(why, "\n") {
				t.Errorf("Explain = %q, want one line naming %s", why, e.Source)
			}
			if _, err := r.Command(tt.name); !errors.Is(err, host.ErrUnknownPlugin) {
				t.Errorf("Command error = %v, want ErrUnknownPlugin", err)
			}
		})
	}
	if e := entry(t, r, "echo"); e.Error != "" {
		t.Errorf("echo, next to the broken ones: %q", e.Error)
	}
	if e := entry(t, r, "liar"); e.Version != "1.2.3" || e.Schema == nil {
		t.Errorf("liar entry = %+v, want what it said about itself kept", e)
	}
}

func TestBuiltinsCannotBeShadowed(t *testing.T) {
	dir := install(t, t.TempDir(), "shell", "bad.name")
	r := discover(t, registry.Config{Dirs: []string{dir}})
	if e := entry(t, r, "shell"); e.Source != registry.SourceBuiltin {
		t.Errorf("shell from %s, want the built-in", e.Source)
	}
	want := []string{
		"ignoring " + filepath.Join(dir, "kiln-plugin-bad.name") + ": a plugin name may only have letters, digits, _ and -",
		"ignoring " + filepath.Join(dir, "kiln-plugin-shell") + `: "shell" is a built-in plugin, which cannot be replaced`,
	}
	if diff := cmp.Diff(want, r.Warnings()); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
}

func TestDiscoverFolderErrors(t *testing.T) {
	// A folder that does not exist is no error: the default one often
	// does not.
	r := discover(t, registry.Config{Dirs: []string{filepath.Join(t.TempDir(), "none")}})
	if _, ok := r.Plugin("shell"); !ok {
		t.Error("built-in shell unknown")
	}
	file := filepath.Join(t.TempDir(), "plugins")
	writeFile(t, file, 0o644)
	if _, err := (registry.Config{Dirs: []string{file}}).Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "reading plugins folder "+file) {
		t.Errorf("Discover with a file as plugins folder: %v, want a reading error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := registry.Discover(ctx, []string{install(t, t.TempDir(), "echo")}, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Discover with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestCommand(t *testing.T) {
	dir := install(t, t.TempDir(), "echo")
	r := discover(t, registry.Config{Dirs: []string{dir}, Kiln: "/opt/kiln/bin/kiln"})
	cmd, err := r.Command("shell")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/opt/kiln/bin/kiln", "plugin", "shell"}, cmd.Args); diff != "" {
		t.Errorf("built-in command (-want +got):\n%s", diff)
	}
	if _, err := r.Command("nope"); !errors.Is(err, host.ErrUnknownPlugin) {
		t.Errorf("Command(nope): %v, want ErrUnknownPlugin", err)
	}

	// An external plugin runs through a host with the registry's commands.
	h := host.New(host.Config{Command: r.Command})
	t.Cleanup(func() { h.Close() })
	var log strings.Builder
	res, err := h.Run(t.Context(), "echo", host.Request{With: map[string]any{"message": "hello from echo"}}, &log)
	if err != nil || !res.Success {
		t.Fatalf("Run(echo) = %+v, %v; log %q", res, err, log.String())
	}
	if log.String() != "hello from echo\n" {
		t.Errorf("log = %q", log.String())
	}
}

// TestExecutables: the plugins a host can start, for the builds a worker
// lists: built-in ones run the kiln binary, external ones their own
// executables; one that did not load is not among them.
func TestExecutables(t *testing.T) {
	dir := install(t, t.TempDir(), "echo", "liar")
	r := discover(t, registry.Config{Dirs: []string{dir}, Kiln: "/opt/kiln/bin/kiln", Builtins: dag.MapCatalog{"shell": plugins.Builtin()["shell"]}})
	want := []host.Executable{
		{Name: "echo", Version: "1.2.3", Path: filepath.Join(dir, "kiln-plugin-echo")},
		{Name: "shell", Version: plugins.BuiltinVersion("shell"), Path: "/opt/kiln/bin/kiln"},
	}
	if diff := cmp.Diff(want, r.Executables()); diff != "" {
		t.Errorf("Executables (-want +got):\n%s", diff)
	}
}

// TestCatalog checks the registry as the DAG loader's catalog: `with` is
// validated against an external plugin's schema, and a plugin that did not
// load is unknown, with the reason.
func TestCatalog(t *testing.T) {
	dir := install(t, t.TempDir(), "echo", "sensor", "liar")
	r := discover(t, registry.Config{Dirs: []string{dir}})
	opts := dag.Options{Plugins: r}

	good := `id: ok
tasks:
  - id: say
    plugin: echo
    with: {message: "hi {{ .ds }}", times: 2}
  - id: wait
    plugin: sensor
    mode: poke
    with: {anything: [1, 2]}
  - id: run
    plugin: shell
    with: {command: "true"}
`
	g, err := dag.Parse("ok.yaml", []byte(good), opts)
	if err != nil {
		t.Fatalf("valid DAG: %v", err)
	}
	if g.Tasks[1].Sensor == nil {
		t.Error("task of the external sensor is no sensor")
	}

	bad := `id: bad
tasks:
  - id: say
    plugin: echo
    with:
      times: 0
      colour: red
  - id: fib
    plugin: liar
  - id: who
    plugin: nobody
`
	_, err = dag.Parse("bad.yaml", []byte(bad), opts)
	var errs dag.ErrorList
	if !errors.As(err, &errs) {
		t.Fatalf("invalid DAG: %v, want an ErrorList", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	liar := filepath.Join(dir, "kiln-plugin-liar")
	want := []string{
		`bad.yaml:6:7: plugin echo: with: missing property 'message'`,
		`bad.yaml:6:14: plugin echo: with.times: minimum: got 0, want 1`,
		`bad.yaml:7:7: plugin echo: with: unknown key "colour"`,
		`bad.yaml:9:13: unknown plugin "liar": ` + liar + ` did not load: the plugin calls itself "someone_else", but its file name makes it "liar": rename the file kiln-plugin-someone_else or fix the plugin's name`,
		`bad.yaml:11:13: unknown plugin "nobody"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func writeFile(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	writeScript(t, path, "#!/bin/sh\n", perm)
}

func writeScript(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}
