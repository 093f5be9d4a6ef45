package main_test

// Hostile input from outside: files in the DAGs folder that used to freeze
// or exhaust Kiln (a FIFO, a link to /dev/zero, YAML nested far too deep, a
// file too large), given to `kiln dags validate` and dropped into the
// folder of a running `kiln standalone`.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mustBeRegular = ": a DAG file must be a regular file or a symbolic link to one"

// hostileFile is a file to put in a DAGs folder and the problem it is.
type hostileFile struct {
	name    string
	make    func(t *testing.T, path string)
	problem string // LINE:COL: message
}

func writeHostile(content string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func linkToDevZero(t *testing.T, path string) {
	t.Helper()
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

// hostileFiles are the files that used to freeze or exhaust Kiln, but the
// FIFO, which each test places itself.
func hostileFiles() []hostileFile {
	var blockMappings strings.Builder
	blockMappings.WriteString("id: block_mappings\nx-deep:\n")
	for i := range 1_400 {
		fmt.Fprintf(&blockMappings, "%sk%d:\n", strings.Repeat(" ", i+1), i)
	}
	big := "id: big\ntasks: [{id: a, plugin: shell, with: {command: x}}]\n# "
	big += strings.Repeat("x", 1<<20-len(big)) + "\n" // 1 MiB and 1 byte
	return []hostileFile{
		{"zero.yaml", linkToDevZero, "1:1: not a regular file but a symbolic link to /dev/zero, a character device" + mustBeRegular},
		{"big.yaml", writeHostile(big), "1:1: larger than 1048576 bytes (1 MiB), the limit for a DAG file"},
		{"flow40k.yaml", writeHostile("id: flow40k\ntasks: " + strings.Repeat("[", 40_000) + strings.Repeat("]", 40_000)), "2:72: YAML nested more than 64 levels deep"},
		{"flow100k.yaml", writeHostile("id: flow100k\ntasks: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)), "2:72: YAML nested more than 64 levels deep"},
		{"block_sequences.yaml", writeHostile("id: block_sequences\ntasks:\n" + strings.Repeat("- ", 100_000) + "x\n"), "3:129: YAML nested more than 64 levels deep"},
		{"block_mappings.yaml", writeHostile(blockMappings.String()), "66:68: YAML nested more than 64 levels deep"},
	}
}

const fifoProblem = "1:1: not a regular file but a named pipe (FIFO)" + mustBeRegular

// TestDagsValidateHostileFiles: `kiln dags validate` reports each hostile
// file as a problem and exits 2 at once, alone or in a folder with a good
// DAG, which it still counts.
func TestDagsValidateHostileFiles(t *testing.T) {
	dir := t.TempDir()
	files := append(hostileFiles(), hostileFile{"fifo.yaml", mkfifo, fifoProblem})
	for _, f := range files {
		f.make(t, filepath.Join(dir, f.name))
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(dir, f.name)
			start := time.Now()
			stdout, stderr, code := runKiln(t, "dags", "validate", path)
			took := time.Since(start)
			want := fmt.Sprintf("%s:%s\nkiln: 1 problem(s) found; 0 valid DAG(s) in 1 file(s)\n", path, f.problem)
			if code != 2 || stdout != "" || stderr != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, want)
			}
			if took > 10*time.Second {
				t.Errorf("took %v, want about the time the binary takes to start", took)
			}
		})
	}
	writeFiles(t, dir, map[string]string{"good.yaml": "id: good\ntasks: [{id: a, plugin: shell, with: {command: x}}]\n"})
	_, stderr, code := runKiln(t, "dags", "validate", dir)
	if want := fmt.Sprintf("kiln: %d problem(s) found; 1 valid DAG(s) in %d file(s)\n", len(files), len(files)+1); code != 2 || !strings.HasSuffix(stderr, want) {
		t.Errorf("the folder: exit %d, stderr %q; want 2 ending in %q", code, stderr, want)
	}
}

// TestStandaloneHostileDAGFolder starts a real `kiln standalone` with a
// FIFO in its DAGs folder, then drops the other hostile files and another
// FIFO in while it runs. It must start, stay healthy with each file an
// import error, keep reloading, run a good DAG, stay small, and stop on
// SIGTERM.
func TestStandaloneHostileDAGFolder(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	writeFiles(t, dags, map[string]string{"good.yaml": "id: good\ntasks: [{id: a, plugin: shell, with: {command: 'echo good'}}]\n"})
	mkfifo(t, filepath.Join(dags, "at_start.yaml"))
	// It starts: /healthz answers 200 with a FIFO in the folder.
	sa := startStandalone(t, dags, filepath.Join(dir, "data"), "--workers", "1")
	base := sa.URL

	want := map[string]string{"at_start.yaml": fifoProblem}
	for _, f := range hostileFiles() {
		f.make(t, filepath.Join(dags, f.name))
		want[f.name] = f.problem
	}
	mkfifo(t, filepath.Join(dags, "at_reload.yaml"))
	want["at_reload.yaml"] = fifoProblem
	var got map[string]string
	waitFor(t, "every hostile file to be an import error", func() bool {
		got = importErrors(t, base)
		return len(got) == len(want)
	})
	for name, problem := range want {
		if got[name] != problem {
			t.Errorf("%s: import error %q, want %q", name, got[name], problem)
		}
	}
	if !sa.healthy() {
		t.Error("/healthz does not answer 200: bad files are import errors, not ill health")
	}

	// Reloads go on: a DAG added now loads, and runs like the first one.
	writeFiles(t, dags, map[string]string{"later.yaml": "id: later\ntasks: [{id: a, plugin: shell, with: {command: 'echo later'}}]\n"})
	waitHTTP(t, base+"/api/v1/dags/later")
	for _, id := range []string{"good", "later"} {
		trigger(t, sa, id, true) // fails the test unless the run succeeds
	}
	if m := metrics(t, base); !strings.Contains(m, "\nkiln_dag_folder_last_load_timestamp_seconds ") {
		t.Error("/metrics has no kiln_dag_folder_last_load_timestamp_seconds")
	}
	// A link to /dev/zero was read until the memory ran out: 10 GB in 75 s.
	peak := peakRSS(t, sa.cmd.Process.Pid)
	if peak > 512<<20 {
		t.Errorf("peak RSS %d MiB, want under 512 MiB", peak>>20)
	}
	t.Logf("peak RSS %d MiB", peak>>20)

	if err := sa.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sa.wait(t, 30*time.Second); code != 0 {
		t.Errorf("after SIGTERM: exit %d, want 0", code)
	}
}

// importErrors maps the base name of each file in GET
// /api/v1/import-errors to its first problem, as LINE:COL: message.
func importErrors(t *testing.T, base string) map[string]string {
	t.Helper()
	var ies []struct {
		File   string `json:"file"`
		Errors []struct {
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	getJSON(t, base+"/api/v1/import-errors", &ies)
	out := map[string]string{}
	for _, ie := range ies {
		if len(ie.Errors) > 0 {
			e := ie.Errors[0]
			out[filepath.Base(ie.File)] = fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Message)
		}
	}
	return out
}

func metrics(t *testing.T, base string) string {
	t.Helper()
	return getText(t, base+"/metrics")
}

// getText returns the body of a GET of url.
func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// peakRSS reads the peak resident set size of a process (Linux).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("peak RSS not checked: %v", err)
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM: %v", err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
