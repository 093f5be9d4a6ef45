// Command wordcount is a Kiln stage plugin, written as a third party would
// write one, with nothing but the plugin SDK: it counts the words and lines
// of the file named by `with.path`, as wc does, and emits them as the
// outputs `words` and `lines`.
//
// Build it into kiln's plugins folder and name it in a DAG as
// `plugin: wordcount` (see README.md):
//
//	go build -o ~/.kiln/plugins/kiln-plugin-wordcount ./examples/plugins/wordcount
package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"unicode"

	"github.com/kilnhq/kiln/plugins/sdk"
)

func main() { sdk.Main(wordcount{}) }

// schema is the JSON Schema of the `with` object: kiln checks every task
// against it when it loads a DAG.
//
//go:embed schema.json
var schema []byte

// wordcount is the stage. It holds no state, so that tasks running at
// once in the plugin process share nothing.
type wordcount struct{}

// params is the task's `with` object.
type params struct {
	Path string `json:"path"`
}

func (wordcount) Info() sdk.Info {
	return sdk.Info{Name: "wordcount", Version: "1.0.0", Schema: schema}
}

func (wordcount) Run(ctx context.Context, t *sdk.Task) error {
	var p params
	if err := t.Decode(&p); err != nil {
		return err
	}
	if p.Path == "" {
		return errors.New("path is required")
	}
	path := p.Path
	if !filepath.IsAbs(path) && t.WorkDir != "" {
		path = filepath.Join(t.WorkDir, path)
	}

	f, err := os.Open(path)
	if err != nil {
		return err // "open PATH: no such file or directory" is the try's error
	}
	defer f.Close()
	t.Logf("counting the words and lines of %s", path)
	words, lines, err := count(ctx, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	t.Logf("%d words, %d lines", words, lines)

	if err := t.SetOutput("words", strconv.Itoa(words)); err != nil {
		return err
	}
	return t.SetOutput("lines", strconv.Itoa(lines))
}

// count counts words (runs of anything but white space) and lines
// (newlines) as wc does. It stops early when ctx is cancelled, which is how
// a try that times out or is cancelled ends: the worker has already marked
// it failed, and what count returns then is not read.
func count(ctx context.Context, r io.Reader) (words, lines int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	inWord := false
	for n := 0; ; n++ {
		if n%(64<<10) == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		c, _, err := br.ReadRune()
		if errors.Is(err, io.EOF) {
			return words, lines, nil
		}
		if err != nil {
			return 0, 0, err
		}
		if c == '\n' {
			lines++
		}
		switch space := unicode.IsSpace(c); {
		case space:
			inWord = false
		case !inWord:
			inWord = true
			words++
		}
	}
}
