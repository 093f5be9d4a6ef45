package main_test

import (
	"strings"
	"testing"
)

// TestHelp checks that every command prints a short usage with -h (docs/cli.md)
// on stdout and exits 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"kiln -h", []string{"-h"}, []string{"Usage:", "kiln [command]", "dags"}},
		{"kiln --help", []string{"--help"}, []string{"Usage:", "kiln [command]", "dags"}},
		{"kiln help", []string{"help"}, []string{"Usage:", "kiln [command]"}},
		{"kiln dags -h", []string{"dags", "-h"}, []string{"Usage:", "kiln dags [command]", "validate", "next"}},
		{"kiln dags validate -h", []string{"dags", "validate", "-h"}, []string{"Usage:", "kiln dags validate [PATH...]", "FILE:LINE:COL", "./dags"}},
		{"kiln help dags validate", []string{"help", "dags", "validate"}, []string{"Usage:", "kiln dags validate [PATH...]"}},
		{"kiln dags next -h", []string{"dags", "next", "-h"}, []string{"Usage:", "kiln dags next PATH_OR_DAG", "--from", "--n", "--json", "--dags"}},
		{"kiln db -h", []string{"db", "-h"}, []string{"Usage:", "kiln db [command]", "check", "backup"}},
		{"kiln db check -h", []string{"db", "check", "-h"}, []string{"Usage:", "kiln db check [--data DIR]", "exits 0", "--data"}},
		{"kiln db backup -h", []string{"db", "backup", "-h"}, []string{"Usage:", "kiln db backup (FILE | -o FILE) [--data DIR]", "--output", "--server", "To restore"}},
		{"-h wins over bad arguments", []string{"dags", "next", "-h", "--n", "0"}, []string{"Usage:", "kiln dags next PATH_OR_DAG"}},
		{"kiln artifacts -h", []string{"artifacts", "-h"}, []string{"Usage:", "kiln artifacts [command]", "list", "get", "gc"}},
		{"kiln artifacts get -h", []string{"artifacts", "get", "-h"}, []string{"Usage:", "kiln artifacts get --dag DAG --run RUN_ID --task ID [--map-index N] NAME [-o FILE]", "--force", "SHA-256"}},
		{"kiln cache -h", []string{"cache", "-h"}, []string{"Usage:", "kiln cache [command]", "list", "clear"}},
		{"kiln standalone -h", []string{"standalone", "-h"}, []string{"--artifact-retention string", `(default "30d")`, "--artifacts-max-bytes string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKiln(t, tt.args...)
			if code != 0 {
				t.Errorf("exit code = %d, want 0 (stderr %q)", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want empty", stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not mention %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestUsageErrors checks that bad usage of any command exits 2 with a
// message on stderr (docs/cli.md#exit-codes).
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of stderr
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: `"frobnicate"`},
		{
			name: "unknown dags command",
			args: []string{"dags", "frobnicate", "x"},
			want: "frobnicate",
		},
		{name: "unknown flag", args: []string{"--frobnicate"}, want: "--frobnicate"},
		{name: "unknown validate flag", args: []string{"dags", "validate", "--strict", "testdata/next"}, want: "--strict"},
		{name: "bad artifact retention", args: []string{"standalone", "--artifact-retention", "3x"}, want: `--artifact-retention "3x": want an age such as 30d`},
		{name: "negative artifact store bound", args: []string{"server", "--nats", "nats://127.0.0.1:1", "--artifacts-max-bytes", "-1"}, want: `--artifacts-max-bytes "-1": want a size such as 200GiB`},
		{name: "artifact store bound not a size", args: []string{"server", "--nats", "nats://127.0.0.1:1", "--artifacts-max-bytes", "10 potatoes"}, want: `--artifacts-max-bytes "10 potatoes": want a size`},
		{name: "unknown artifacts command", args: []string{"artifacts", "lsit"}, want: `(did you mean "list"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runKiln(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.HasPrefix(stderr, "kiln: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want a \"kiln: \" message mentioning %q", stderr, tt.want)
			}
		})
	}
}
