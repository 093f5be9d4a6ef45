package shell

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
)

// params are the task's `with` parameters (schema.json).
type params struct {
	Command string         `json:"command"`
	Shell   string         `json:"shell"`
	Workdir string         `json:"workdir"`
	Env     map[string]any `json:"env"`
}

func decodeParams(with []byte) (params, error) {
	var p params
	if len(bytes.TrimSpace(with)) == 0 {
		with = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(with))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return p, err
	}
	if p.Command == "" {
		return p, errors.New("command is required")
	}
	if p.Shell == "" {
		p.Shell = "/bin/sh"
	}
	return p, nil
}

// env returns the command's environment: the request's, then the task's
// `env` in name order; os/exec keeps the last value of a repeated name.
func (p params) env(base []string) ([]string, error) {
	env := make([]string, 0, len(base)+len(p.Env))
	env = append(env, base...)
	names := make([]string, 0, len(p.Env))
	for k := range p.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var s string
		switch v := p.Env[k].(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("env.%s: want a string, number or boolean, got %T", k, v)
		}
		env = append(env, k+"="+s)
	}
	return env, nil
}

// dir returns the command's working directory: `workdir`, relative to the
// request's directory when it is relative, or else the request's directory.
func (p params) dir(reqDir string) string {
	switch {
	case p.Workdir == "":
		return reqDir
	case filepath.IsAbs(p.Workdir) || reqDir == "":
		return p.Workdir
	default:
		return filepath.Join(reqDir, p.Workdir)
	}
}
