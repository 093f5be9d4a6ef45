package dag

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"text/template/parse"
)

func TestInsertsOnly(t *testing.T) {
	for src, want := range map[string]bool{
		"no actions": true,
		"{{ .ds }}":  true,
		"--date {{.ds}} --r {{  .params.region  }}}}": true,
		"{{ .outputs.extract.rows_2 }}":               true,
		"a {{ .x }} b {{ .y.z }} c":                   true,
		"{{ . }}":                                     false,
		"{{ .x | printf \"%q\" }}":                    false,
		"{{- .x }}":                                   false,
		"{{ .x -}}":                                   false,
		"{{ $.x }}":                                   false,
		"{{ .x.1 }}":                                  false,
		"{{ .1x }}":                                   false,
		"{{ .x. }}":                                   false,
		"{{ .x..y }}":                                 false,
		"{{ .é }}":                                    false,
		"{{\t.x }}":                                   false,
		"{{ .x }":                                     false,
		"{{/* c */}}":                                 false,
		"{{ if .x }}y{{ end }}":                       false,
		"{{{ .x }}":                                   false,
	} {
		if got := insertsOnly(src); got != want {
			t.Errorf("insertsOnly(%q) = %v, want %v", src, got, want)
		}
	}
}

// chainAt is a field chain and where it starts in a template's source.
type chainAt struct {
	Chain []string
	Pos   int
}

// FuzzInsertsOnly: a template insertsOnly takes parses, and its parse tree
// refers to the same field chains, in the same order and at the same
// places, as eachInsert finds.
func FuzzInsertsOnly(f *testing.F) {
	for _, s := range []string{"{{ .ds }}", "a {{.x.y}} b {{ .z }}", "{{ .x }}}}", "{{ if .x }}{{ end }}", "{{- .x -}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if !insertsOnly(src) {
			return
		}
		trees, err := parse.Parse("", src, "", "", builtinFuncNames)
		if err != nil {
			t.Fatalf("insertsOnly(%q) but it does not parse: %v", src, err)
		}
		var want, got []chainAt
		walkTemplate(trees[""].Root, true, func(c []string, pos int) { want = append(want, chainAt{c, pos}) })
		eachInsert(src, func(c []string, pos int) { got = append(got, chainAt{c, pos}) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: eachInsert found %v, the parse tree %v", src, got, want)
		}
	})
}

// TestInsertsOnlyRandom holds insertsOnly to FuzzInsertsOnly's property
// over templates assembled from the pieces that matter.
func TestInsertsOnlyRandom(t *testing.T) {
	pieces := []string{"{{", "}}", " ", ".", "x", "Y_", "1", "-", "|", "$", "\t", "é", "/*", "*/", "(", ")", "\"", "if", "end", "}", "{"}
	rng := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for range 200_000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		src := b.String()
		if !insertsOnly(src) {
			continue
		}
		taken++
		trees, err := parse.Parse("", src, "", "", builtinFuncNames)
		if err != nil {
			t.Fatalf("insertsOnly(%q) but it does not parse: %v", src, err)
		}
		var want, got []chainAt
		walkTemplate(trees[""].Root, true, func(c []string, pos int) { want = append(want, chainAt{c, pos}) })
		eachInsert(src, func(c []string, pos int) { got = append(got, chainAt{c, pos}) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: eachInsert found %v, the parse tree %v", src, got, want)
		}
	}
	if taken < 1000 {
		t.Errorf("only %d templates taken: the generator misses the point", taken)
	}
}
