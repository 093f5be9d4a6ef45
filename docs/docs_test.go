package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The documents that used to be cited live outside the repository. The
// names are built from pieces so that this file does not cite them itself.
var (
	outsideSpec  = "S" + "PEC"
	outsideNotes = "BUILD" + "-NOTES"
	// outsideCitation matches a citation of an outside document: its name
	// as a word, with or without a section number or ".md".
	outsideCitation = regexp.MustCompile(`\b(` + outsideSpec + `|` + regexp.QuoteMeta(outsideNotes) + `)\b`)
)

// docLink matches a reference to a documentation page from any file, such
// as docs/dag-format.md#templates in a Go comment.
var docLink = regexp.MustCompile(`\bdocs/([A-Za-z0-9_.-]+\.md)(#[\p{L}\p{N}_-]+)?`)

// mdLink matches an inline Markdown link or image: [text](target "title").
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// scanned says whether a file is text this test reads, by name.
func scanned(name string) bool {
	switch filepath.Base(name) {
	case "Makefile", "Dockerfile", "run":
		return true
	}
	switch filepath.Ext(name) {
	case ".go", ".md", ".proto", ".yaml", ".yml", ".golden", ".json", ".sh", ".py",
		".txt", ".html", ".js", ".css", ".conf", ".service", ".toml":
		return true
	}
	return false
}

// repoRoot walks up from the test's folder to the folder holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// repoFile is one text file of the repository.
type repoFile struct {
	rel  string // slash-separated, relative to the root
	data []byte
}

// repoFiles reads the repository's text files, leaving out hidden folders
// (.git, a data folder) and build output.
func repoFiles(t *testing.T, root string) []repoFile {
	t.Helper()
	var files []repoFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !scanned(name) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > 4<<20 {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, repoFile{rel: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNoOutsideCitations fails on a file that cites a document kept
// outside the repository: docs/ is the reference, and a citation must
// point at a page of it.
func TestNoOutsideCitations(t *testing.T) {
	root := repoRoot(t)
	for _, f := range repoFiles(t, root) {
		sc := bufio.NewScanner(bytes.NewReader(f.data))
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for n := 1; sc.Scan(); n++ {
			if m := outsideCitation.FindString(sc.Text()); m != "" {
				t.Errorf("%s:%d: cites %s, which is not in the repository; cite a page of docs/ and its heading instead, or nothing: %s",
					f.rel, n, m, strings.TrimSpace(sc.Text()))
			}
		}
	}
}

// TestDocLinks checks that every link to a documentation page resolves:
// docs/<page>.md#<anchor> in any file (Go comments above all), and relative
// links in the Markdown files, to an existing file and, with an anchor, to
// a heading of that page.
func TestDocLinks(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	anchors := map[string]map[string]bool{} // rel path of a .md file → its anchors
	for _, f := range files {
		if strings.HasSuffix(f.rel, ".md") {
			anchors[f.rel] = headingAnchors(f.data)
		}
	}
	check := func(where, target, anchor string) {
		if anchor == "" {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
				t.Errorf("%s: link to %s: no such file", where, target)
			}
			return
		}
		set, ok := anchors[target]
		switch {
		case !ok && !strings.HasSuffix(target, ".md"):
			t.Errorf("%s: link to %s#%s: anchors only resolve in Markdown pages", where, target, anchor)
		case !ok:
			t.Errorf("%s: link to %s#%s: no such page", where, target, anchor)
		case !set[anchor]:
			t.Errorf("%s: link to %s#%s: the page has no heading with that anchor", where, target, anchor)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f.rel, ".md") {
			for _, l := range proseLines(f.data) {
				for _, m := range mdLink.FindAllStringSubmatch(l.text, -1) {
					target, anchor, _ := strings.Cut(m[1], "#")
					if isExternal(target) {
						continue
					}
					where := fmt.Sprintf("%s:%d", f.rel, l.n)
					if target == "" {
						check(where, f.rel, anchor)
						continue
					}
					resolved := path.Clean(path.Join(path.Dir(f.rel), target))
					if strings.HasPrefix(resolved, "../") {
						t.Errorf("%s: link to %s leaves the repository", where, m[1])
						continue
					}
					check(where, resolved, anchor)
				}
			}
			continue
		}
		for n, line := range strings.Split(string(f.data), "\n") {
			for _, m := range docLink.FindAllStringSubmatch(line, -1) {
				check(fmt.Sprintf("%s:%d", f.rel, n+1), "docs/"+m[1], strings.TrimPrefix(m[2], "#"))
			}
		}
	}
}

func isExternal(target string) bool {
	return strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:")
}

// proseLine is a line of a Markdown file outside fenced code blocks.
type proseLine struct {
	n    int // 1-based
	text string
}

// proseLines returns a Markdown file's lines outside fenced code blocks,
// in order.
func proseLines(data []byte) []proseLine {
	var out []proseLine
	fence := ""
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		out = append(out, proseLine{i + 1, line})
	}
	return out
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// headingAnchors returns the anchors GitHub gives a Markdown page's
// headings: the text lowercased, without punctuation but - and _, spaces
// turned into -, and -1, -2, ... added to repeats.
func headingAnchors(data []byte) map[string]bool {
	set := map[string]bool{}
	seen := map[string]int{}
	for _, l := range proseLines(data) {
		m := atxHeading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		slug := Slug(m[2])
		if k := seen[slug]; k > 0 {
			set[fmt.Sprintf("%s-%d", slug, k)] = true
		} else {
			set[slug] = true
		}
		seen[slug]++
	}
	return set
}

// Slug is the anchor GitHub gives a heading's text.
func Slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	text = strings.ToLower(strings.ReplaceAll(text, "`", ""))
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for _, tt := range []struct{ heading, want string }{
		{"The DAG file format", "the-dag-file-format"},
		{"`when`", "when"},
		{"Retries, timeouts and heartbeats", "retries-timeouts-and-heartbeats"},
		{"Catchup, start_date and end_date", "catchup-start_date-and-end_date"},
		{"`kiln dags pause` and `kiln dags unpause`", "kiln-dags-pause-and-kiln-dags-unpause"},
		{"The data folder (`--data`, default `./.kiln`)", "the-data-folder---data-default-kiln"},
		{"See [the API](api.md)", "see-the-api"},
	} {
		if got := Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
	got := headingAnchors([]byte("# A\n```\n# not a heading\n```\n## A\n### B ###\n"))
	for _, want := range []string{"a", "a-1", "b"} {
		if !got[want] {
			t.Errorf("headingAnchors: no %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("headingAnchors took a line of a code block for a heading")
	}
}
