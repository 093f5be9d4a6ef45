package dag

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestShellQuoteRoundTrip: whatever a param holds, a real shell reads the
// quoted form back as that one word.
func TestShellQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "two words", `"; touch /tmp/pwned; echo "`, "it's", "'", "''", "$(id)", "`id`", "a\nb", `back\slash`, "*", "-n"} {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+ShellQuote(v)).Output()
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if string(out) != v {
			t.Errorf("%q came back as %q", v, out)
		}
	}
}

func TestShellQuoteInTemplates(t *testing.T) {
	g, err := Parse("q.yaml", []byte(`
params:
  name: {type: string, default: x}
  n: {type: integer, default: 3}
tasks:
  - {id: a, plugin: shell, with: {command: "echo {{ .params.name | shellquote }} {{ shellquote .params.n }}"}}
`), Options{Plugins: MapCatalog{"shell": {Name: "shell"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Tasks[0].With["command"].(*Template).Render(Values{Params: map[string]any{"name": "a'b; c", "n": 3}}.Data(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := `echo 'a'\''b; c' '3'`; got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
}

// TestUnquotedParamWarnings: a free-text param inserted into a shell
// command without shellquote is a warning at the command, not an error.
func TestUnquotedParamWarnings(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    []string // params warned about
	}{
		{`echo "hello {{ .params.name }}"`, []string{"name"}},
		{`echo '{{ .params.name }}'`, []string{"name"}},
		{`echo {{ .params.name | shellquote }}`, nil},
		{`echo {{ shellquote .params.name }}`, nil},
		{`echo "$KILN_PARAM_NAME"`, nil},
		{`echo {{ .params.region }} {{ .params.count }} {{ .params.typed }}`, nil}, // enum, integer and typed non-string
		{`echo {{ if .params.name }}{{ .params.anything }}{{ end }}`, []string{"anything"}},
		{`echo {{ printf "%s-x" .params.name }}`, []string{"name"}},
		{`echo {{ printf "%s-x" .params.name | shellquote }}`, nil},
		{`echo {{ range .params.list }}{{ . }}{{ end }}`, nil},
		{`echo {{ .params.name }} {{ .params.anything }} {{ .params.name }}`, []string{"name", "anything"}},
	} {
		src := `
params:
  name: {type: string, default: x}
  anything: {default: x}
  region: {type: string, enum: [eu, us], default: eu}
  count: {type: integer, default: 1}
  typed: {type: boolean, default: false}
  list: {type: array, default: []}
tasks:
  - id: a
    plugin: shell
    with:
      command: ` + quoteYAML(tc.command) + `
`
		g, err := Parse("w.yaml", []byte(src), Options{Plugins: MapCatalog{"shell": {Name: "shell"}}})
		if err != nil {
			t.Fatalf("%s: %v", tc.command, err)
		}
		var got []string
		for _, w := range g.Warnings {
			if w.Line != 13 || w.Col != 16 {
				t.Errorf("%s: warning at %d:%d, want at the command, 13:16", tc.command, w.Line, w.Col)
			}
			name := strings.TrimPrefix(w.Msg, "warning: param ")
			got = append(got, name[:strings.IndexByte(name, ' ')])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: warnings for %v, want %v (%v)", tc.command, got, tc.want, g.Warnings)
		}
	}
}

func quoteYAML(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func TestParamEnvNamesCollide(t *testing.T) {
	_, err := Parse("c.yaml", []byte(`
params:
  region: {default: eu}
  REGION: {default: us}
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`), Options{Plugins: MapCatalog{"shell": {Name: "shell"}}})
	if err == nil || !strings.Contains(err.Error(), "c.yaml:4:3: params region and REGION would both be $KILN_PARAM_REGION") {
		t.Errorf("err = %v", err)
	}
}
