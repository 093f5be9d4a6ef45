// Package registry finds the stage plugins a kiln process can use and puts
// built-in and external ones behind one interface.
//
// Built-in plugins come with the kiln binary and run as `kiln plugin NAME`.
// External ones are executables named kiln-plugin-NAME, looked up first in
// the plugins folders, then on $PATH; the first one found of a name wins,
// and none can take a built-in's name. Discover launches each external
// plugin once and asks it to describe itself (version, parameter schema,
// whether it is a sensor). A plugin that does not answer, answers to
// another name or has a bad schema is listed with its error and is unknown
// to the DAG loader, which then says why.
//
// A Registry is the dag.Catalog of the DAG loader, and its Command is what
// a plugins/host.Host runs. Nothing is cached between processes: every
// process discovers afresh.
package registry

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins/host"
)

// SourceBuiltin is the Source of the plugins built into kiln.
const SourceBuiltin = "builtin"

// Entry is what the registry knows of one plugin.
type Entry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source is SourceBuiltin or the path of the plugin's executable.
	Source string `json:"source"`
	Sensor bool   `json:"sensor"`
	// Schema is the JSON Schema of the plugin's `with` parameters; null
	// when it has none or did not describe itself.
	Schema json.RawMessage `json:"schema"`
	// Error says why the plugin cannot be used; "" when it can.
	Error string `json:"error"`
	// Warning says why the plugin's tasks cannot run on this machine now
	// although it loaded, such as the docker stage's with no Docker
	// Engine answering; "" when nothing is known to be wrong.
	Warning string `json:"warning,omitempty"`
}

// Registry is the set of plugins one discovery found. It is immutable and
// safe for concurrent use.
type Registry struct {
	kiln     string
	plugins  map[string]*plugin
	warnings []string
}

type plugin struct {
	entry Entry
	spec  *dag.PluginSpec // nil when entry.Error is set
}

var (
	_ dag.Catalog   = (*Registry)(nil)
	_ dag.Explainer = (*Registry)(nil)
)

// Plugin implements dag.Catalog: it knows the built-in plugins and the
// external ones that described themselves.
func (r *Registry) Plugin(name string) (*dag.PluginSpec, bool) {
	p := r.plugins[name]
	if p == nil || p.spec == nil {
		return nil, false
	}
	return p.spec, true
}

// Explain implements dag.Explainer: for a plugin that was found but failed
// to load it says where it is and what went wrong.
func (r *Registry) Explain(name string) string {
	p := r.plugins[name]
	if p == nil || p.entry.Error == "" {
		return ""
	}
	return fmt.Sprintf("%s did not load: %s", p.entry.Source, oneLine(p.entry.Error))
}

// Command returns the command that starts the named plugin's process, for
// host.Config.Command: `kiln plugin NAME` for a built-in, the executable
// itself for an external plugin. It wraps host.ErrUnknownPlugin for a name
// it does not know or a plugin that failed to load.
func (r *Registry) Command(name string) (*exec.Cmd, error) {
	p := r.plugins[name]
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w %q", host.ErrUnknownPlugin, name)
	case p.spec == nil:
		return nil, fmt.Errorf("%w %q: %s", host.ErrUnknownPlugin, name, r.Explain(name))
	case p.entry.Source == SourceBuiltin:
		return exec.Command(r.kiln, "plugin", name), nil
	}
	return exec.Command(p.entry.Source), nil
}

// Executables returns the plugins Command can start, sorted by name, with
// their versions and executables, for host.Config.List.
func (r *Registry) Executables() []host.Executable {
	var out []host.Executable
	for _, e := range r.List() {
		if r.plugins[e.Name].spec == nil {
			continue
		}
		path := e.Source
		if e.Source == SourceBuiltin {
			path = r.kiln
		}
		out = append(out, host.Executable{Name: e.Name, Version: e.Version, Path: path})
	}
	return out
}

// List returns every plugin found, usable or not, sorted by name.
func (r *Registry) List() []Entry {
	out := make([]Entry, 0, len(r.plugins))
	for _, p := range r.plugins {
		out = append(out, p.entry)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Warnings returns what discovery skipped that someone may have meant to
// use, such as an executable that would shadow a built-in plugin.
func (r *Registry) Warnings() []string { return slices.Clone(r.warnings) }

// oneLine folds a multi-line error (a plugin's crash report) into one
// line, so that it fits a FILE:LINE:COL: message.
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}
