package main_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDAGsFolderDefault checks that every command that reads DAG files
// reads the same folder — --dags, else $KILN_DAGS, else ./dags — and that
// a missing one is named with how to name another.
func TestDAGsFolderDefault(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "mine")
	writeFiles(t, dags, map[string]string{"hourly.yaml": "schedule: '@hourly'\nstart_date: 2026-01-01\ntasks:\n  - {id: a, plugin: shell, with: {command: 'true'}}\n"})
	readers := [][]string{
		{"dags", "validate"},
		{"dags", "next", "hourly"},
		{"standalone", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
		{"server", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1"},
	}
	for _, tt := range []struct {
		name string
		env  []string
		want []string
	}{
		{"default", nil, []string{"DAGs folder " + filepath.Join(dir, "dags") + " (the default, ./dags) does not exist", "--dags DIR or $KILN_DAGS"}},
		{"$KILN_DAGS", []string{"KILN_DAGS=nowhere"}, []string{"DAGs folder " + filepath.Join(dir, "nowhere") + " ($KILN_DAGS=nowhere) does not exist", "--dags DIR or $KILN_DAGS"}},
	} {
		for _, args := range readers {
			t.Run(tt.name+"/"+strings.Join(args[:2], " "), func(t *testing.T) {
				_, stderr, code := runKilnEnv(t, dir, tt.env, "", args...)
				wantStderr(t, code, stderr, 2, tt.want...)
			})
		}
	}

	// $KILN_DAGS names the folder of every reader; --dags wins over it.
	env := []string{"KILN_DAGS=mine"}
	if stdout, stderr, code := runKilnEnv(t, dir, env, "", "dags", "validate"); code != 0 || !strings.Contains(stdout, "ok: 1 DAG(s)") {
		t.Errorf("dags validate with $KILN_DAGS: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, stderr, code := runKilnEnv(t, dir, env, "", "dags", "next", "hourly", "--from", "2026-03-01", "--n", "1"); code != 0 || !strings.Contains(stdout, "2026-03-01T00:00:00Z") {
		t.Errorf("dags next with $KILN_DAGS: exit %d, %q %q", code, stdout, stderr)
	}
	_, stderr, code := runKilnEnv(t, dir, env, "", "dags", "validate", "--dags", "other")
	wantStderr(t, code, stderr, 2, "DAGs folder "+filepath.Join(dir, "other")+" (--dags other) does not exist")
	_, stderr, code = runKilnEnv(t, dir, env, "", "dags", "validate", "mine", "--dags", "mine")
	wantStderr(t, code, stderr, 2, "PATHs or --dags, not both")
}

// wantStderr checks a run's exit code and that its stderr says each of
// substrings.
func wantStderr(t *testing.T, gotCode int, stderr string, code int, substrings ...string) {
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
