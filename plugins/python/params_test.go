package python

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// TestSchemaAndDecode checks that the schema, which the host validates DAG
// files with, and the plugin's own decoding agree on every case.
func TestSchemaAndDecode(t *testing.T) {
	schema, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		with     string
		wantArgv []string // nil: invalid
	}{
		{name: "code", with: `{"code": "print(1)"}`, wantArgv: []string{"-c", "print(1)"}},
		{name: "script with args", with: `{"script": "a.py", "args": ["x", 2, 1.5, false]}`,
			wantArgv: []string{"a.py", "x", "2", "1.5", "false"}},
		{name: "script like an option", with: `{"script": "-a.py"}`, wantArgv: []string{"./-a.py"}},
		{name: "module, interpreter and requirements",
			with:     `{"module": "etl.load", "python": "python3.12", "requirements": "requirements.lock"}`,
			wantArgv: []string{"-m", "etl.load"}},
		{name: "none", with: `{}`},
		{name: "args only", with: `{"args": ["x"]}`},
		{name: "code and script", with: `{"code": "pass", "script": "a.py"}`},
		{name: "all three", with: `{"code": "pass", "script": "a.py", "module": "m"}`},
		{name: "empty code", with: `{"code": ""}`},
		{name: "unknown key", with: `{"code": "pass", "cmd": "x"}`},
		{name: "args not a list", with: `{"code": "pass", "args": "x"}`},
		{name: "args holding a list", with: `{"code": "pass", "args": [["x"]]}`},
		{name: "args holding null", with: `{"code": "pass", "args": [null]}`},
		{name: "python not a string", with: `{"code": "pass", "python": 3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.with))
			if err != nil {
				t.Fatal(err)
			}
			schemaErr := schema.Validate(v)
			p, decodeErr := decodeParams(&sdk.Task{With: []byte(tt.with)})
			if tt.wantArgv == nil {
				if schemaErr == nil {
					t.Error("the schema accepts it")
				}
				if decodeErr == nil {
					t.Error("decodeParams accepts it")
				}
				return
			}
			if schemaErr != nil {
				t.Errorf("the schema rejects it: %v", schemaErr)
			}
			if decodeErr != nil {
				t.Fatalf("decodeParams: %v", decodeErr)
			}
			if diff := cmp.Diff(tt.wantArgv, p.argv()); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeDefaults(t *testing.T) {
	p, err := decodeParams(&sdk.Task{With: []byte(`{"code": "pass"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Python != "python3" {
		t.Errorf("python %q, want python3", p.Python)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	writeFile(t, filepath.Join(bin, "py"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(bin, "py"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin, "noexec"), "")
	tests := []struct {
		name, python, path, dir string
		want, wantErr           string
	}{
		{name: "in PATH", python: "py", path: "/nonexistent:" + bin, want: filepath.Join(bin, "py")},
		{name: "relative PATH entry skipped", python: "py", path: "bin", dir: dir, wantErr: "not found"},
		{name: "not in PATH", python: "py", path: "/nonexistent", wantErr: "py not found in the task's PATH"},
		{name: "not executable", python: "noexec", path: bin, wantErr: "not found"},
		{name: "absolute path", python: filepath.Join(bin, "py"), path: "/nonexistent", want: filepath.Join(bin, "py")},
		{name: "path relative to the working directory", python: "bin/py", dir: dir, want: filepath.Join(bin, "py")},
		{name: "path to a non-executable", python: "bin/noexec", dir: dir, wantErr: "is not an executable file"},
		{name: "path to nothing", python: "bin/nothing", dir: dir, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(tt.python, tt.path, tt.dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("lookPath = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("lookPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEnvsRoot(t *testing.T) {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache folder:", err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "KILN_PYTHON_ENVS", env: map[string]string{"KILN_PYTHON_ENVS": "/envs", "XDG_CACHE_HOME": "/xdg"}, want: "/envs"},
		{name: "relative KILN_PYTHON_ENVS", env: map[string]string{"KILN_PYTHON_ENVS": "envs"}, wantErr: "not an absolute path"},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": "/xdg"}, want: "/xdg/kiln/python"},
		{name: "relative XDG_CACHE_HOME ignored", env: map[string]string{"XDG_CACHE_HOME": "xdg"}, want: filepath.Join(cache, "kiln", "python")},
		{name: "neither", want: filepath.Join(cache, "kiln", "python")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := envsRoot(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("envsRoot = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("envsRoot = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
