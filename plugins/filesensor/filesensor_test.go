package filesensor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// poke runs the sensor once in dir with the given parameters, and returns
// its log, outputs and error.
func poke(ctx context.Context, t *testing.T, dir string, with map[string]any) (log string, outputs map[string]string, err error) {
	t.Helper()
	return plugintest.RunStage(ctx, t, Stage{}, with, &sdk.Task{WorkDir: dir})
}

// write creates a file of size bytes under dir, and its folders.
func write(t *testing.T, dir, name string, size int) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPoke(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]int // name: size
		dirs    []string
		with    map[string]any
		want    map[string]string // outputs; nil: not yet
		wantErr string            // with want nil: the reason
	}{
		{
			name:    "nothing there",
			with:    map[string]any{"path": "data/*.csv"},
			wantErr: "no file matches ",
		},
		{
			name:  "one file",
			files: map[string]int{"data/a.csv": 3},
			with:  map[string]any{"path": "data/*.csv"},
			want:  map[string]string{"path": "data/a.csv", "matches": "1"},
		},
		{
			name:  "first match in name order",
			files: map[string]int{"data/b.csv": 1, "data/a.csv": 1, "data/c.txt": 1},
			with:  map[string]any{"path": "data/?.csv"},
			want:  map[string]string{"path": "data/a.csv", "matches": "2"},
		},
		{
			name:  "empty file with no min_size",
			files: map[string]int{"_SUCCESS": 0},
			with:  map[string]any{"path": "_SUCCESS"},
			want:  map[string]string{"path": "_SUCCESS", "matches": "1"},
		},
		{
			name:    "too small",
			files:   map[string]int{"data/a.csv": 9, "data/b.csv": 10},
			with:    map[string]any{"path": "data/*.csv", "min_size": 11},
			wantErr: "2 file(s) match ", // and the largest's size
		},
		{
			name:  "only the large enough count",
			files: map[string]int{"data/a.csv": 9, "data/b.csv": 10, "data/c.csv": 100},
			with:  map[string]any{"path": "data/*.csv", "min_size": 10},
			want:  map[string]string{"path": "data/b.csv", "matches": "2"},
		},
		{
			name: "a directory counts without min_size",
			dirs: []string{"out/part"},
			with: map[string]any{"path": "out/*"},
			want: map[string]string{"path": "out/part", "matches": "1"},
		},
		{
			name:    "but not with one",
			dirs:    []string{"out/part"},
			with:    map[string]any{"path": "out/*", "min_size": 1},
			wantErr: "only directories match",
		},
		{
			name:  "character class",
			files: map[string]int{"report-2026-01-02.json": 1},
			with:  map[string]any{"path": "report-[0-9][0-9][0-9][0-9]-*.json"},
			want:  map[string]string{"path": "report-2026-01-02.json", "matches": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, size := range tt.files {
				write(t, dir, name, size)
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			log, outputs, err := poke(t.Context(), t, dir, tt.with)
			if tt.want == nil {
				if !errors.Is(err, sdk.ErrNotYet) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run: %v, want ErrNotYet saying %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), filepath.Join(dir, tt.with["path"].(string))) {
					t.Errorf("Run: %v, want it to name the pattern it checked", err)
				}
				if len(outputs) != 0 {
					t.Errorf("outputs %v before the condition is met", outputs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v, want success", err)
			}
			if diff := cmp.Diff(tt.want, outputs); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
			if !strings.Contains(log, "found "+tt.want["path"]) {
				t.Errorf("log %q does not say what was found", log)
			}
		})
	}
}

func TestPokeSizes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.bin", 5)
	_, _, err := poke(t.Context(), t, dir, map[string]any{"path": "*.bin", "min_size": 6})
	if err == nil || !strings.Contains(err.Error(), "the largest of 5 bytes, below min_size 6") {
		t.Errorf("Run: %v, want it to say the largest size", err)
	}
	// The file grows: the next poke succeeds.
	write(t, dir, "a.bin", 6)
	if _, _, err := poke(t.Context(), t, dir, map[string]any{"path": "*.bin", "min_size": 6}); err != nil {
		t.Errorf("Run after the file grew: %v", err)
	}
}

func TestPokeAbsoluteAndLinks(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "real/f.txt", 4)
	if err := os.Symlink(filepath.Join(dir, "real/f.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling.txt")); err != nil {
		t.Fatal(err)
	}
	// An absolute path ignores the working directory, and is output as it is.
	abs := filepath.Join(dir, "real", "*.txt")
	_, outputs, err := poke(t.Context(), t, t.TempDir(), map[string]any{"path": abs})
	if err != nil || outputs["path"] != filepath.Join(dir, "real/f.txt") {
		t.Errorf("absolute path: %v, outputs %v", err, outputs)
	}
	// A link to a file counts at the file's size; a dangling link does not.
	_, outputs, err = poke(t.Context(), t, dir, map[string]any{"path": "*.txt", "min_size": 4})
	if err != nil || outputs["path"] != "link.txt" || outputs["matches"] != "1" {
		t.Errorf("links: %v, outputs %v; want link.txt alone", err, outputs)
	}
}

func TestPokeErrors(t *testing.T) {
	tests := []struct {
		name    string
		with    map[string]any
		wantErr string
	}{
		{"no path", map[string]any{}, "path is required"},
		{"bad pattern", map[string]any{"path": "data/[.csv"}, `path "data/[.csv": syntax error in pattern`},
		{"negative min_size", map[string]any{"path": "x", "min_size": -1}, "min_size -1 is negative"},
		{"string min_size", map[string]any{"path": "x", "min_size": "10"}, "min_size"},
		{"unknown key", map[string]any{"path": "x", "glob": "y"}, `unknown field "glob"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := poke(t.Context(), t, t.TempDir(), tt.with)
			if err == nil || errors.Is(err, sdk.ErrNotYet) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run: %v, want a failure containing %q", err, tt.wantErr)
			}
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := poke(ctx, t, t.TempDir(), map[string]any{"path": "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestSchema(t *testing.T) {
	s, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	for with, ok := range map[string]bool{
		`{"path": "data/*.csv"}`:                  true,
		`{"path": "data/*.csv", "min_size": 100}`: true,
		`{}`:                                   false,
		`{"path": ""}`:                         false,
		`{"path": "x", "min_size": -1}`:        false,
		`{"path": "x", "min_size": 1.5}`:       false,
		`{"path": "x", "poke_interval": "1m"}`: false,
	} {
		var v any
		if err := json.Unmarshal([]byte(with), &v); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); (err == nil) != ok {
			t.Errorf("Validate(%s) = %v, want ok %v", with, err, ok)
		}
	}
	if i := (Stage{}).Info(); i.Name != Name || !i.Sensor {
		t.Errorf("Info() = %+v, want a sensor", i)
	}
}
