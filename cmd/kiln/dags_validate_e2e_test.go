package main_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Problems in the fixtures under testdata/validate/mixed, as `kiln dags
// validate` must print them (docs/dag-format.md#validation: FILE:LINE:COL: message), ordered by
// file and position. The files under .hidden/, _drafts/, _draft.yaml,
// .backup.yaml and README.txt are broken too but must be ignored.
const (
	brokenCronProblems = `testdata/validate/mixed/broken_cron.yaml:2:11: schedule: invalid cron minute field "61": end of range (61) above maximum (59): 61
testdata/validate/mixed/broken_cron.yaml:11:18: depends_on: no task "extrct" in this DAG (did you mean "extract"?)
`
	brokenKeysProblems = `testdata/validate/mixed/nested/deep/broken_keys.yml:2:1: unknown key "schedul" in DAG (did you mean "schedule"?)
testdata/validate/mixed/nested/deep/broken_keys.yml:11:18: dependency cycle: a → b → a
`
)

func TestDagsValidate(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "folder with valid and broken files, nested and ignored ones",
			args:       []string{"dags", "validate", "testdata/validate/mixed"},
			wantCode:   2,
			wantStderr: brokenCronProblems + brokenKeysProblems + "kiln: 4 problem(s) found; 1 valid DAG(s) in 3 file(s)\n",
		},
		{
			name:       "folder given with a trailing slash",
			args:       []string{"dags", "validate", "testdata/validate/mixed/nested/"},
			wantCode:   2,
			wantStderr: brokenKeysProblems + "kiln: 2 problem(s) found; 0 valid DAG(s) in 1 file(s)\n",
		},
		{
			name:       "single valid file",
			args:       []string{"dags", "validate", "testdata/validate/mixed/good.yaml"},
			wantStdout: "ok: 1 DAG(s) in 1 file(s)\n",
		},
		{
			name:       "a param inserted unquoted into a shell command is a warning",
			args:       []string{"dags", "validate", "testdata/validate/unquoted"},
			wantStdout: "ok: 1 DAG(s) in 1 file(s), 1 warning(s)\n",
			wantStderr: "testdata/validate/unquoted/greet.yaml:7:16: warning: param name goes into a shell command unquoted: a value such as `x; rm -rf ~` would run as a command. Write {{ .params.name | shellquote }}, or use \"$KILN_PARAM_NAME\"\n",
		},
		{
			name:       "single broken file",
			args:       []string{"dags", "validate", "testdata/validate/mixed/broken_cron.yaml"},
			wantCode:   2,
			wantStderr: brokenCronProblems + "kiln: 2 problem(s) found; 0 valid DAG(s) in 1 file(s)\n",
		},
		{
			name:       "several valid paths: a folder and a file",
			args:       []string{"dags", "validate", "testdata/next", "testdata/validate/mixed/good.yaml"},
			wantStdout: "ok: 4 DAG(s) in 4 file(s)\n",
		},
		{
			name:       "several paths, some broken: every problem and every valid DAG counted",
			args:       []string{"dags", "validate", "testdata/validate/mixed/broken_cron.yaml", "testdata/next", "testdata/validate/mixed/nested"},
			wantCode:   2,
			wantStderr: brokenCronProblems + brokenKeysProblems + "kiln: 4 problem(s) found; 3 valid DAG(s) in 5 file(s)\n",
		},
		{
			name:     "a docker task's parameters, checked without a Docker Engine",
			args:     []string{"dags", "validate", "testdata/validate/docker"},
			wantCode: 2,
			wantStderr: `testdata/validate/docker/train.yaml:6:15: plugin docker: with.memory: "lots" is not valid: want a memory limit: bytes, or a size such as 512m or 2g (binary units, as docker run --memory). Swap is not added to it.` + "\n" +
				`testdata/validate/docker/train.yaml:7:16: plugin docker: with.mounts.0: "./data:data" is not valid: want SOURCE:TARGET[:ro|rw], TARGET an absolute path in the container` + "\n" +
				`testdata/validate/docker/train.yaml:8:13: plugin docker: with.pull: value must be one of 'never', 'missing', 'always'` + "\n" +
				"kiln: 3 problem(s) found; 0 valid DAG(s) in 1 file(s)\n",
		},
		{
			name:       "duplicate DAG id in one folder",
			args:       []string{"dags", "validate", "testdata/validate/dupes"},
			wantCode:   2,
			wantStderr: `testdata/validate/dupes/b.yaml:1:5: duplicate DAG id "twin": already defined in testdata/validate/dupes/a.yaml` + "\n" + "kiln: 1 problem(s) found; 1 valid DAG(s) in 2 file(s)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKiln(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if diff := cmp.Diff(tt.wantStdout, stdout); diff != "" {
				t.Errorf("stdout differs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantStderr, stderr); diff != "" {
				t.Errorf("stderr differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDagsValidateExamples checks that the DAGs bundled with the project are
// valid. Their number may grow, so the summary is matched, not spelled out.
func TestDagsValidateExamples(t *testing.T) {
	stdout, stderr, code := runKiln(t, "dags", "validate", "../../examples/dags")
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want empty", stderr)
	}
	m := regexp.MustCompile(`^ok: (\d+) DAG\(s\) in (\d+) file\(s\)\n$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want \"ok: N DAG(s) in N file(s)\\n\"", stdout)
	}
	dags, _ := strconv.Atoi(m[1])
	files, _ := strconv.Atoi(m[2])
	yamls, err := filepath.Glob("../../examples/dags/*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	if dags < 2 || dags != files || files < len(yamls) {
		t.Errorf("stdout = %q, want every one of the %d example file(s) (at least 2) to be one valid DAG", stdout, len(yamls))
	}
}

// TestDagsValidateMissingPath checks that a path that does not exist is
// reported as a problem naming the path, and that the other paths given are
// still checked.
func TestDagsValidateMissingPath(t *testing.T) {
	const missing = "testdata/does-not-exist"
	tests := []struct {
		name    string
		args    []string
		summary string
	}{
		{"alone", []string{"dags", "validate", missing}, "kiln: 1 problem(s) found; 0 valid DAG(s) in 0 file(s)"},
		{"with a valid folder", []string{"dags", "validate", missing, "testdata/next"}, "kiln: 1 problem(s) found; 3 valid DAG(s) in 3 file(s)"},
		{"as a file in a folder", []string{"dags", "validate", missing + "/x.yaml"}, "kiln: 1 problem(s) found; 0 valid DAG(s) in 0 file(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKiln(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want empty", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], missing) || !strings.Contains(lines[0], "no such file or directory") || lines[1] != tt.summary {
				t.Errorf("stderr = %q, want the missing path named, then %q", stderr, tt.summary)
			}
		})
	}
}

// TestDagsValidateDuplicateIDAcrossPaths: two files named on the command line
// that define the same DAG id could not be loaded together from one DAGs
// folder, so validate should report it like it does inside a folder
// (docs/dag-format.md#validation: "duplicate DAG ids across files").
func TestDagsValidateDuplicateIDAcrossPaths(t *testing.T) {
	_, stderr, code := runKiln(t, "dags", "validate", "testdata/validate/dupes/a.yaml", "testdata/validate/dupes/b.yaml")
	if code != 2 || !strings.Contains(stderr, `duplicate DAG id "twin"`) {
		t.Errorf("exit code %d, stderr %q; want 2 and a duplicate DAG id problem", code, stderr)
	}
}
