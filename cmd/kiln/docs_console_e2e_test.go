package main_test

// TestDocsConsole runs the ```console blocks of README.md and docs/cli.md
// against a real `kiln standalone` on the bundled examples, command by
// command, in the order a reader follows them, and compares what each
// command prints, and its exit status, with what the page shows.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docPages are the pages whose console blocks run, in this order, against
// one server: README.md's tour first, as a new user starts there.
var docPages = []string{"README.md", "docs/cli.md"}

// docSkipped are the documented commands that do not run here, keyed by
// "PAGE: COMMAND", with the reason. Every other command must be a kiln
// command that runs against the bundled examples.
var docSkipped = map[string]string{
	"docs/cli.md: kiln dags list":                                         "shows a server with authentication on",
	"docs/cli.md: kiln dags validate":                                     "shows a missing ./dags in a user's home folder",
	"docs/cli.md: kiln dags next dags/churn.yaml --from 2026-03-27 --n 2": "reads a DAG of the text, not of examples/",
	"docs/cli.md: kiln login --user ada":                                  "asks for a password",
	"docs/cli.md: kiln runs diff manual__2026-12-05T10:00:00Z manual__2026-12-05T10:05:00Z --dag diffed": "compares runs of a DAG of the text, not of examples/ (TestRunsDiff runs it)",
}

// docExit are the documented commands that fail on purpose, keyed by
// "PAGE: COMMAND", with their exit status; every other command exits 0.
var docExit = map[string]int{
	"README.md: bin/kiln trigger ml_pipeline --param sample_frac=2":                                             2,
	"README.md: bin/kiln dags validate examples/dags":                                                           2,
	"docs/cli.md: kiln dags lsit":                                                                               2,
	"README.md: bin/kiln runs diff manual__2026-11-04T06:30:00Z manual__2026-11-05T06:30:00Z --dag nightly_etl": 1,
	"docs/cli.md: kiln trigger ml_pipelin":                                                                      1,
}

// docBefore is what the reader does by hand before a command, as the page
// says, keyed by "PAGE: COMMAND".
var docBefore = map[string]func(t *testing.T, tour *docTour){
	// The runs that `make run` started on its own have ended by the time
	// the reader looks at the list.
	"README.md: bin/kiln runs list nightly_etl": func(t *testing.T, tour *docTour) {
		waitFor(t, "the runs of nightly_etl to end", func() bool {
			var runs []struct {
				State string `json:"state"`
			}
			getJSON(t, tour.server.URL+"/api/v1/dags/nightly_etl/runs", &runs)
			for _, r := range runs {
				if r.State != "success" && r.State != "failed" {
					return false
				}
			}
			return true
		})
	},
	// "Misspell join in the depends_on of load in
	// examples/dags/nightly_etl.yaml", and wait for the server to have
	// read the file.
	"README.md: bin/kiln dags validate examples/dags": func(t *testing.T, tour *docTour) {
		path := filepath.Join(tour.root, "examples", "dags", "nightly_etl.yaml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		const good, bad = "depends_on: [join]", "depends_on: [jion]"
		if n := bytes.Count(b, []byte(good)); n != 1 {
			t.Fatalf("examples/dags/nightly_etl.yaml has %q %d times, want once (the README's step 4 misspells it)", good, n)
		}
		if err := os.WriteFile(path, bytes.Replace(b, []byte(good), []byte(bad), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server to report nightly_etl.yaml's import error", func() bool {
			var errs []struct {
				File string `json:"file"`
			}
			getJSON(t, tour.server.URL+"/api/v1/import-errors", &errs)
			for _, e := range errs {
				if e.File == "nightly_etl.yaml" {
					return true
				}
			}
			return false
		})
	},
}

// docCommand is one command of a console block: the text after "$ ", and
// the lines the page shows it printing, up to the next "$ " or the end of
// the block. A line "..." stands for any number of lines.
type docCommand struct {
	page string
	line int // of the "$ " line
	cmd  string
	want []string
}

// key is how docSkipped, docExit and docBefore name the command.
func (c docCommand) key() string { return c.page + ": " + c.cmd }

// parseConsoleBlocks returns the commands of page's ```console blocks.
func parseConsoleBlocks(page, md string) ([]docCommand, error) {
	var cmds []docCommand
	in, open := false, 0 // in a block since line open
	cur := -1            // the block's last command, an index in cmds
	for i, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```console":
			in, open, cur = true, i+1, -1
		case !in:
		case strings.HasPrefix(line, "```"):
			in = false
		case strings.HasPrefix(line, "$ "):
			cmds = append(cmds, docCommand{page: page, line: i + 1, cmd: strings.TrimSpace(line[2:])})
			cur = len(cmds) - 1
		case cur < 0:
			return nil, fmt.Errorf("%s:%d: the console block of line %d shows output before any \"$ \" command", page, i+1, open)
		default:
			cmds[cur].want = append(cmds[cur].want, line)
		}
	}
	if in {
		return nil, fmt.Errorf("%s:%d: the console block is not closed", page, open)
	}
	for i := range cmds {
		cmds[i].want = trimBlankTail(cmds[i].want)
	}
	return cmds, nil
}

// trimBlankTail drops the blank lines at the end of lines: a blank line
// between two commands of a block only separates them.
func trimBlankTail(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// timePattern is an RFC 3339 time, as the CLI prints UTC times.
const timePattern = `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`

// runIDPattern is the id of a run the server made.
var runIDPattern = regexp.MustCompile(`\b(?:manual|scheduled|backfill)__` + timePattern)

// volatile are the parts of output that differ from one run to the next,
// replaced in this order by a placeholder on both sides before comparing;
// everything else (words, columns, order) must match. A time in a DAG's
// zone drops its seconds when they are zero, hence the optional part.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{runIDPattern, "<RUN>"},
	{regexp.MustCompile(timePattern), "<TIME>"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?`), "<LOCALTIME>"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}`), "<DATE>"},
	{regexp.MustCompile(`\b[0-9a-f]{12,64}\b`), "<HASH>"},
	{regexp.MustCompile(`\b(?:127\.0\.0\.1|localhost):\d+\b`), "<ADDR>"},
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|µs|ns|h|m|s)(?:\d+(?:\.\d+)?(?:ms|µs|ns|m|s))*\b`), "<DURATION>"},
	{regexp.MustCompile(`\b\d+\.\d+\b`), "<NUMBER>"},
	// Columns are as wide as their widest value, so a gap of two spaces
	// or more is one column break, whatever its width.
	{regexp.MustCompile(`(\S)  +`), "$1  "},
}

// normalize is line with its volatile parts replaced.
func normalize(line string) string {
	for _, v := range volatile {
		line = v.re.ReplaceAllString(line, v.repl)
	}
	return strings.TrimRight(line, " \t")
}

// matchLines matches got against want, where a want line "..." stands for
// any number of lines, and returns for each want line the index of the got
// line it matched (-1 for "...").
func matchLines(want, got []string) ([]int, bool) {
	var match func(w, g int) []int
	match = func(w, g int) []int {
		switch {
		case w == len(want) && g == len(got):
			return []int{}
		case w == len(want):
			return nil
		case want[w] == "...":
			for k := g; k <= len(got); k++ {
				if rest := match(w+1, k); rest != nil {
					return append([]int{-1}, rest...)
				}
			}
			return nil
		case g < len(got) && normalize(want[w]) == normalize(got[g]):
			if rest := match(w+1, g+1); rest != nil {
				return append([]int{g}, rest...)
			}
		}
		return nil
	}
	m := match(0, 0)
	return m, m != nil
}

// docTour is a reader following the pages: a copy of the repository's
// examples, the server `make run` starts on them, and the run ids the
// pages show bound to the ones the server made.
type docTour struct {
	root   string // the repository a reader works in
	server *standalone
	runs   map[string]string // page's run id → the server's
	pages  map[string]string // the server's run id → page's
}

// bindRuns pairs the run ids of a page's line with those of the line it
// matched: a page names a run by the id it showed earlier.
func (tour *docTour) bindRuns(t *testing.T, c docCommand, want, got string) {
	t.Helper()
	ws, gs := runIDPattern.FindAllString(want, -1), runIDPattern.FindAllString(got, -1)
	for i := range ws {
		if r, ok := tour.runs[ws[i]]; ok && r != gs[i] {
			t.Fatalf("%s:%d: run %s stands for two runs, %s and %s", c.page, c.line, ws[i], r, gs[i])
		}
		if p, ok := tour.pages[gs[i]]; ok && p != ws[i] {
			t.Fatalf("%s:%d: run %s is shown as %s and as %s", c.page, c.line, gs[i], p, ws[i])
		}
		tour.runs[ws[i]], tour.pages[gs[i]] = gs[i], ws[i]
	}
}

// args turns a documented command into the arguments of the kiln binary,
// with each run id the page showed replaced by the server's.
func (tour *docTour) args(t *testing.T, c docCommand) []string {
	t.Helper()
	if strings.ContainsAny(c.cmd, "'\"$|&;<>`\\") {
		t.Fatalf("%s:%d: %q needs a shell; add it to docSkipped with the reason", c.page, c.line, c.cmd)
	}
	fields := strings.Fields(c.cmd)
	if fields[0] != "kiln" && fields[0] != "bin/kiln" {
		t.Fatalf("%s:%d: %q is not a kiln command; add it to docSkipped with the reason", c.page, c.line, c.cmd)
	}
	args := fields[1:]
	for i, a := range args {
		args[i] = runIDPattern.ReplaceAllStringFunc(a, func(id string) string {
			r, ok := tour.runs[id]
			if !ok {
				t.Fatalf("%s:%d: %q names run %s, which no output before it showed", c.page, c.line, c.cmd, id)
			}
			return r
		})
	}
	return args
}

// run runs a documented command as a reader does, in the repository with
// $KILN_SERVER pointing at the server, and returns its output as a
// terminal shows it: standard output and error in the order written.
func (tour *docTour) run(t *testing.T, args []string) (out string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	cmd.Dir = tour.root
	cmd.Env = append(kilnEnv(), "TZ="+localTZ, "KILN_SERVER="+tour.server.URL)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b // one pipe, as a terminal is
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kiln %s: did not finish within %v:\n%s", strings.Join(args, " "), 2*runTimeout, b.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		exitCode = exit.ExitCode()
	default:
		t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
	}
	return b.String(), exitCode
}

func TestDocsConsole(t *testing.T) {
	var cmds []docCommand
	for _, page := range docPages {
		md, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(page)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseConsoleBlocks(page, string(md))
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c...)
	}
	checkListed(t, cmds)

	// What `make run` does, in a copy of the repository's examples.
	root := t.TempDir()
	for _, dir := range []string{"examples/dags", "examples/ml"} {
		if err := os.CopyFS(filepath.Join(root, dir), os.DirFS(filepath.Join("..", "..", dir))); err != nil {
			t.Fatal(err)
		}
	}
	tour := &docTour{root: root, runs: map[string]string{}, pages: map[string]string{}}
	tour.server = startStandaloneIn(t, root, "examples/dags", ".kiln")
	// Kiln stops as on Ctrl-C, letting running tasks finish, so that none
	// still writes in root when it is removed.
	t.Cleanup(func() {
		if err := tour.server.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Errorf("stopping kiln standalone: %v", err)
			return
		}
		tour.server.wait(t, 2*runTimeout)
	})

	for _, c := range cmds {
		if _, ok := docSkipped[c.key()]; ok {
			continue
		}
		if before := docBefore[c.key()]; before != nil {
			before(t, tour)
		}
		out, code := tour.run(t, tour.args(t, c))
		got := trimBlankTail(strings.Split(out, "\n"))
		m, ok := matchLines(c.want, got)
		if !ok {
			t.Fatalf("%s:%d: $ %s\nthe page shows:\n%s\nit printed:\n%s\nnormalised, the page shows:\n%s\nand it printed:\n%s",
				c.page, c.line, c.cmd, indent(c.want, false), indent(got, false), indent(c.want, true), indent(got, true))
		}
		if want := docExit[c.key()]; code != want {
			t.Fatalf("%s:%d: $ %s: exit status %d, want %d; it printed:\n%s", c.page, c.line, c.cmd, code, want, out)
		}
		for i, g := range m {
			if g >= 0 {
				tour.bindRuns(t, c, c.want[i], got[g])
			}
		}
	}
}

// checkListed fails if docSkipped, docExit or docBefore name a command
// that the pages no longer have: each entry must be one a reader meets.
func checkListed(t *testing.T, cmds []docCommand) {
	t.Helper()
	have := map[string]bool{}
	for _, c := range cmds {
		have[c.key()] = true
	}
	for name, keys := range map[string][]string{
		"docSkipped": mapKeys(docSkipped), "docExit": mapKeys(docExit), "docBefore": mapKeys(docBefore),
	} {
		for _, k := range keys {
			if !have[k] {
				t.Errorf("%s names %q, which no console block of %v has", name, k, docPages)
			}
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// indent formats lines for a failure message, normalised if asked.
func indent(lines []string, normalized bool) string {
	var b strings.Builder
	for _, l := range lines {
		if normalized && l != "..." {
			l = normalize(l)
		}
		b.WriteString("    | " + l + "\n")
	}
	return b.String()
}

// TestConsoleMatching checks the reading of console blocks and what the
// comparison lets differ: volatile values and column widths, not words.
func TestConsoleMatching(t *testing.T) {
	md := "text\n```console\n$ kiln dags list\nDAG  A\n\n$ kiln x\n```\n```sh\n$ make run\n```\n"
	cmds, err := parseConsoleBlocks("P.md", md)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].cmd != "kiln dags list" || cmds[0].line != 3 ||
		strings.Join(cmds[0].want, "|") != "DAG  A" || cmds[1].cmd != "kiln x" || len(cmds[1].want) != 0 {
		t.Fatalf("parseConsoleBlocks = %+v", cmds)
	}
	if _, err := parseConsoleBlocks("P.md", "```console\noutput\n```\n"); err == nil {
		t.Error("output before any command: no error")
	}
	if _, err := parseConsoleBlocks("P.md", "```console\n$ kiln x\n"); err == nil {
		t.Error("an unclosed block: no error")
	}

	for _, tt := range []struct {
		want, got []string
		ok        bool
	}{
		{[]string{"run manual__2026-11-05T06:30:00Z: queued"}, []string{"run manual__2026-12-05T11:47:32.574681Z: queued"}, true},
		{[]string{"x  2026-11-26T23:48:37Z  107ms"}, []string{"x         2026-12-05T11:48:16+01:00  1m2.5s"}, true},
		{[]string{"at 2026-11-27 07:30:12 Europe/Zurich"}, []string{"at 2026-12-05 12:44 Europe/Zurich"}, true},
		{[]string{"accuracy 0.647 on 400 rows"}, []string{"accuracy 0.703 on 400 rows"}, true},
		{[]string{"accuracy 0.647 on 400 rows"}, []string{"accuracy 0.703 on 401 rows"}, false},
		{[]string{"A  B"}, []string{"A B"}, false}, // one column, not two
		{[]string{"cleared 2"}, []string{"cleared 2", "more"}, false},
		{[]string{"a", "...", "z"}, []string{"a", "z"}, true},
		{[]string{"a", "...", "z"}, []string{"a", "b", "c", "z"}, true},
		{[]string{"a", "...", "z"}, []string{"a", "b"}, false},
	} {
		if _, ok := matchLines(tt.want, tt.got); ok != tt.ok {
			t.Errorf("matchLines(%q, %q) = %v, want %v", tt.want, tt.got, ok, tt.ok)
		}
	}
}
