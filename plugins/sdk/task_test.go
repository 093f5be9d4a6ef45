package sdk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	type params struct {
		Path  string `json:"path"`
		Count int    `json:"count"`
		Inner struct {
			Deep bool `json:"deep"`
		} `json:"inner"`
	}
	tests := []struct {
		name    string
		with    string
		want    params
		wantErr string
	}{
		{name: "fields", with: `{"path":"/x","count":3}`, want: params{Path: "/x", Count: 3}},
		{name: "empty", with: ``, want: params{}},
		{name: "unknown field", with: `{"path":"/x","pth":"/y"}`, wantErr: `invalid parameters: unknown field "pth"`},
		{name: "unknown nested field", with: `{"inner":{"deep":true,"deeper":1}}`, wantErr: `invalid parameters: unknown field "deeper"`},
		{name: "wrong type", with: `{"count":"three"}`, wantErr: `invalid parameters: count: got a JSON string, want int`},
		{name: "not an object", with: `[1]`, wantErr: `invalid parameters: cannot unmarshal array`},
		{name: "two values", with: `{} {}`, wantErr: `invalid parameters: more than one JSON value`},
		{name: "bad JSON", with: `{"path":`, wantErr: `invalid parameters: unexpected EOF`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got params
			err := (&Task{With: json.RawMessage(tt.with)}).Decode(&got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode(%s) error = %v, want one containing %q", tt.with, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.with, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", tt.with, diff)
			}
		})
	}
}

func TestGetenv(t *testing.T) {
	t.Setenv("KILN_SDK_PROCESS_ONLY", "process")
	task := &Task{Env: []string{"A=1", "B=x=y", "EMPTY=", "A=2", "NOEQUALS"}}
	for key, want := range map[string]string{
		"A":                     "2", // the last one, as os/exec
		"B":                     "x=y",
		"EMPTY":                 "",
		"NOEQUALS":              "",
		"MISSING":               "",
		"KILN_SDK_PROCESS_ONLY": "", // not the plugin's own environment
	} {
		if got := task.Getenv(key); got != want {
			t.Errorf("Getenv(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestLogf(t *testing.T) {
	var b strings.Builder
	task := &Task{Log: &b}
	task.Logf("one %d", 1)
	task.Logf("two\n")
	task.Logf("")
	if got, want := b.String(), "one 1\ntwo\n\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	(&Task{}).Logf("a task without a log does not panic")
}

func TestSetOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	task := &Task{Env: []string{"KILN_OUTPUT=" + out}}
	for _, kv := range [][2]string{{"words", "42"}, {"_x.y-z", "a=b c"}, {"empty", ""}, {"words", "43"}} {
		if err := task.SetOutput(kv[0], kv[1]); err != nil {
			t.Fatalf("SetOutput(%q, %q): %v", kv[0], kv[1], err)
		}
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "words=42\n_x.y-z=a=b c\nempty=\nwords=43\n"; string(got) != want {
		t.Errorf("output file = %q, want %q", got, want)
	}

	jsonOut := filepath.Join(dir, "json")
	if err := os.WriteFile(jsonOut, []byte("\n  {\"a\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, key, value string
		env              []string
		wantErr          string
	}{
		{name: "empty key", key: "", wantErr: "invalid key"},
		{name: "key with a space", key: "a b", wantErr: "invalid key"},
		{name: "key with =", key: "a=b", wantErr: "invalid key"},
		{name: "key starting with a digit", key: "1a", wantErr: "invalid key"},
		{name: "key starting with a dot", key: ".a", wantErr: "invalid key"},
		{name: "value with a newline", key: "k", value: "a\nb", wantErr: "newline"},
		{name: "value with a CR", key: "k", value: "a\r", wantErr: "newline"},
		{name: "no KILN_OUTPUT", key: "k", env: []string{}, wantErr: "KILN_OUTPUT is not set"},
		{name: "JSON outputs", key: "k", env: []string{"KILN_OUTPUT=" + jsonOut}, wantErr: "already holds a JSON object"},
		{name: "unwritable", key: "k", env: []string{"KILN_OUTPUT=" + filepath.Join(dir, "no", "such", "dir")}, wantErr: "no such file"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			task := &Task{Env: []string{"KILN_OUTPUT=" + out}}
			if tt.env != nil {
				task.Env = tt.env
			}
			err := task.SetOutput(tt.key, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SetOutput(%q, %q) error = %v, want one containing %q", tt.key, tt.value, err, tt.wantErr)
			}
		})
	}
	if after, _ := os.ReadFile(out); string(after) != string(got) {
		t.Errorf("rejected outputs changed the file: %q", after)
	}
	if after, _ := os.ReadFile(jsonOut); string(after) != "\n  {\"a\": 1}\n" {
		t.Errorf("the JSON outputs file changed: %q", after)
	}
}
