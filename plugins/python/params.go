package python

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// params are the task's `with` parameters (schema.json).
type params struct {
	Code         string            `json:"code"`
	Script       string            `json:"script"`
	Module       string            `json:"module"`
	Args         []json.RawMessage `json:"args"`
	Python       string            `json:"python"`
	Requirements string            `json:"requirements"`

	args []string // Args as the interpreter gets them
}

// decodeParams decodes and checks the task's `with` parameters. The host
// has validated them against the schema already; the checks are for tasks
// that reach the plugin some other way.
func decodeParams(t *sdk.Task) (params, error) {
	var p params
	if err := t.Decode(&p); err != nil {
		return p, err
	}
	var given []string
	for _, f := range []struct{ name, val string }{{"code", p.Code}, {"script", p.Script}, {"module", p.Module}} {
		if f.val != "" {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		return p, errors.New("invalid parameters: one of code, script and module is required")
	case 1:
	default:
		return p, fmt.Errorf("invalid parameters: only one of code, script and module may be given, not %s", strings.Join(given, " and "))
	}
	for i, raw := range p.Args {
		// YAML makes `[--epochs, 10]` a string and a number: take both,
		// numbers as written.
		var s string
		switch raw = bytes.TrimSpace(raw); {
		case len(raw) > 0 && raw[0] == '"':
			if err := json.Unmarshal(raw, &s); err != nil {
				return p, fmt.Errorf("invalid parameters: args[%d]: %w", i, err)
			}
		case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'),
			string(raw) == "true", string(raw) == "false":
			s = string(raw)
		default:
			return p, fmt.Errorf("invalid parameters: args[%d]: got %s, want a string, number or boolean", i, raw)
		}
		p.args = append(p.args, s)
	}
	if p.Python == "" {
		p.Python = "python3"
	}
	return p, nil
}

// argv returns the interpreter's arguments.
func (p params) argv() []string {
	var argv []string
	switch {
	case p.Code != "":
		argv = []string{"-c", p.Code}
	case p.Script != "":
		s := p.Script
		if strings.HasPrefix(s, "-") {
			s = "./" + s // a file, not an option
		}
		argv = []string{s}
	default:
		argv = []string{"-m", p.Module}
	}
	return append(argv, p.args...)
}

// lookPath finds the interpreter the way the task's shell would: a name with
// a slash is a path (relative to the working directory dir), any other name
// is looked up in the task's PATH, or the plugin's when the task has none.
func lookPath(name, path, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && dir != "" {
			name = filepath.Join(dir, name)
		}
		return name, executable(name)
	}
	if path == "" {
		return exec.LookPath(name)
	}
	for _, d := range filepath.SplitList(path) {
		// Relative entries would depend on the working directory; Go's
		// exec.LookPath refuses them too.
		if !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, name); executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in the task's PATH", name)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
