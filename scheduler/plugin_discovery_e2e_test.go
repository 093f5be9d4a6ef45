package scheduler_test

import (
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EExternalPluginDiscovered builds the example wordcount plugin as a
// user would, puts it in a plugins folder, and runs the example's DAG with
// `kiln standalone --plugins DIR`: the DAG validates against the plugin's
// schema, the worker runs it as its own process, and its outputs reach the
// task downstream.
func TestE2EExternalPluginDiscovered(t *testing.T) {
	dir := t.TempDir()
	pluginsDir := filepath.Join(dir, "plugins")
	build := osexec.Command("go", "build", "-o", filepath.Join(pluginsDir, "kiln-plugin-wordcount"), "github.com/kilnhq/kiln/examples/plugins/wordcount")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the wordcount plugin: %v\n%s", err, out)
	}
	kiln := func(args ...string) (string, int) {
		t.Helper()
		out, err := osexec.Command(kilnBin, args...).CombinedOutput()
		if ee, ok := err.(*osexec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}

	out, code := kiln("plugins", "list", "--plugins", pluginsDir)
	if code != 0 || !strings.Contains(out, "wordcount") || !strings.Contains(out, pluginsDir) {
		t.Fatalf("plugins list: exit %d\n%s", code, out)
	}
	example, err := filepath.Abs("../examples/plugins/wordcount/dags")
	if err != nil {
		t.Fatal(err)
	}
	if out, code := kiln("dags", "validate", "--plugins", pluginsDir, example); code != 0 {
		t.Fatalf("validating the example with the plugin: exit %d\n%s", code, out)
	}
	if out, code := kiln("dags", "validate", example); code == 0 || !strings.Contains(out, "wordcount") {
		t.Fatalf("validating the example without the plugin: exit %d, want a failure naming it\n%s", code, out)
	}

	addr, natsAddr := freeAddr(t), freeAddr(t)
	startProcess(t, dir, "standalone", "--dags", example, "--plugins", pluginsDir, "--data", filepath.Join(dir, "data"),
		"--addr", addr, "--nats-listen", natsAddr, "--workers", "1", "--log-level", "warn")
	waitHTTP(t, "http://"+addr+"/healthz")
	server := "--server=http://" + addr

	out, code = kiln("trigger", "wordcount_example", "--wait", server)
	if code != 0 {
		t.Fatalf("trigger --wait: exit %d\n%s", code, out)
	}
	out, code = kiln("runs", "list", "wordcount_example", "--json", server)
	if code != 0 {
		t.Fatalf("runs list: exit %d\n%s", code, out)
	}
	runID := between(t, out, `"run_id": "`, `"`)
	out, code = kiln("tasks", "logs", "wordcount_example", "--run", runID, "--task", "report", server)
	if code != 0 || !strings.Contains(out, "wordcount-example.txt has 9 words on 3 lines") {
		t.Fatalf("report's log: exit %d\n%s", code, out)
	}
}

// between returns the text of s between the first start and the end after it.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q in %s", start, s)
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return s[:j]
}
