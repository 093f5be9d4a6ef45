package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/host"
)

// Prefix starts the file name of every external plugin: kiln-plugin-NAME.
const Prefix = "kiln-plugin-"

// DefaultTimeout bounds the launch and description of one external plugin.
const DefaultTimeout = 5 * time.Second

// DefaultVersion is the version of built-in plugins that have none of their
// own, when Config.Version is not set.
const DefaultVersion = "dev"

// maxParallel bounds the plugin processes discovery runs at once.
const maxParallel = 8

// namePattern is what NAME in kiln-plugin-NAME may be.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// Config configures a discovery.
type Config struct {
	// Dirs are the plugins folders, searched in order before Path. One
	// that does not exist is skipped; one that cannot be read is an error.
	Dirs []string
	// Path is a list of folders in the form of $PATH, searched after
	// Dirs; folders there that cannot be read are skipped, and so are
	// relative ones.
	Path string
	// Kiln is the kiln executable whose `kiln plugin NAME` serves the
	// built-in plugins; default os.Executable().
	Kiln string
	// Builtins are the built-in plugins; default plugins.Builtin().
	Builtins dag.MapCatalog
	// Version is kiln's version, given to built-in plugins that have none
	// of their own; default DefaultVersion.
	Version string
	// Timeout bounds the launch and description of each external plugin;
	// default DefaultTimeout.
	Timeout time.Duration
	// Checks are readiness checks of built-in plugins by name
	// (plugins.Checks), run during discovery, each within Timeout: a
	// failing one sets the plugin's Entry.Warning. Nil runs none.
	Checks map[string]func(context.Context) error
	// Logger gets debug lines on what discovery finds and skips, and the
	// plugins' own log lines. Nil discards them.
	Logger *slog.Logger
}

// Discover finds the built-in plugins, then the external ones in dirs and
// then in path (a $PATH-style list), with the defaults of Config.
func Discover(ctx context.Context, dirs []string, path string) (*Registry, error) {
	return Config{Dirs: dirs, Path: path}.Discover(ctx)
}

// Discover finds the plugins c describes. Problems with single plugins do
// not fail it: they are in the Error of their Entry, or in the registry's
// Warnings. It fails when a plugins folder cannot be read or ctx ends.
func (c Config) Discover(ctx context.Context) (*Registry, error) {
	c.setDefaults()
	r := &Registry{kiln: c.Kiln, plugins: make(map[string]*plugin)}
	for name, spec := range c.Builtins {
		version := plugins.BuiltinVersion(name)
		if version == "" {
			version = c.Version
		}
		r.plugins[name] = &plugin{
			entry: Entry{Name: name, Version: version, Source: SourceBuiltin, Sensor: spec.Sensor, Schema: rawJSON(spec.SchemaJSON)},
			spec:  spec,
		}
	}
	cands, err := c.scan(r)
	if err != nil {
		return nil, err
	}

	found := make([]*plugin, len(cands))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for name, check := range c.Checks {
		if p := r.plugins[name]; p != nil {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, c.Timeout)
				defer cancel()
				if err := check(cctx); err != nil {
					p.entry.Warning = err.Error()
				}
			})
		}
	}
	for i, cand := range cands {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			found[i] = c.load(ctx, cand)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovering plugins: %w", err)
	}
	for _, p := range found {
		r.plugins[p.entry.Name] = p
		if p.entry.Error != "" {
			c.Logger.Debug("plugin did not load", "plugin", p.entry.Name, "path", p.entry.Source, "err", p.entry.Error)
		} else {
			c.Logger.Debug("found plugin", "plugin", p.entry.Name, "path", p.entry.Source, "version", p.entry.Version)
		}
	}
	return r, nil
}

func (c *Config) setDefaults() {
	if c.Kiln == "" {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		c.Kiln = exe
	}
	if c.Builtins == nil {
		c.Builtins = plugins.Builtin()
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// candidate is an external plugin's executable found on disk.
type candidate struct {
	name, path string
	err        error // why it cannot be launched, found before trying
}

// scan lists the external plugins in the folders, first found first, and
// records in r's warnings those it skips that someone may have meant to
// use.
func (c *Config) scan(r *Registry) ([]*candidate, error) {
	var out []*candidate
	seen := make(map[string]string) // name → path
	visit := func(dir string, explicit bool) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if explicit && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("reading plugins folder %s: %w", dir, err)
			}
			c.Logger.Debug("skipping plugins folder", "dir", dir, "err", err)
			return nil
		}
		for _, e := range ents {
			name, ok := nameOf(e.Name())
			if !ok {
				continue
			}
			path := filepath.Join(dir, e.Name())
			st, err := os.Stat(path) // follows symlinks
			if err == nil && st.IsDir() {
				continue
			}
			executable := err == nil && (runtime.GOOS == "windows" || st.Mode()&0o111 != 0)
			if !executable && !explicit {
				continue // as exec.LookPath would
			}
			switch prev, dup := seen[name]; {
			case !namePattern.MatchString(name):
				r.warnings = append(r.warnings, fmt.Sprintf("ignoring %s: a plugin name may only have letters, digits, _ and -", path))
				continue
			case c.Builtins[name] != nil:
				r.warnings = append(r.warnings, fmt.Sprintf("ignoring %s: %q is a built-in plugin, which cannot be replaced", path, name))
				continue
			case dup:
				c.Logger.Debug("plugin shadowed by one found earlier", "plugin", name, "path", path, "by", prev)
				continue
			}
			seen[name] = path
			cand := &candidate{name: name, path: path}
			switch {
			case err != nil:
				cand.err = err
			case !executable:
				cand.err = fmt.Errorf("%s is not executable", path)
			}
			out = append(out, cand)
		}
		return nil
	}
	for _, dir := range c.Dirs {
		if dir == "" {
			continue
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("plugins folder %s: %w", dir, err)
		}
		if err := visit(abs, true); err != nil {
			return nil, err
		}
	}
	for _, dir := range filepath.SplitList(c.Path) {
		if !filepath.IsAbs(dir) {
			continue // never run plugins from wherever kiln happens to be started
		}
		if err := visit(dir, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nameOf returns NAME of a file named kiln-plugin-NAME.
func nameOf(file string) (string, bool) {
	name, ok := strings.CutPrefix(file, Prefix)
	if runtime.GOOS == "windows" {
		name = strings.TrimSuffix(name, filepath.Ext(name))
	}
	return name, ok && name != ""
}

// load launches an external plugin, asks it to describe itself and checks
// what it says.
func (c *Config) load(ctx context.Context, cand *candidate) *plugin {
	p := &plugin{entry: Entry{Name: cand.name, Source: cand.path}}
	if cand.err != nil {
		p.entry.Error = cand.err.Error()
		return p
	}
	info, err := c.describe(ctx, cand)
	if err != nil {
		p.entry.Error = shortLaunchError(err.Error())
		return p
	}
	p.entry.Version, p.entry.Sensor = info.Version, info.Sensor
	p.entry.Schema = rawJSON(info.Schema)
	if info.Name != cand.name {
		p.entry.Error = fmt.Sprintf("the plugin calls itself %q, but its file name makes it %q: rename the file %s%s or fix the plugin's name", info.Name, cand.name, Prefix, info.Name)
		return p
	}
	spec := &dag.PluginSpec{Name: cand.name, Sensor: info.Sensor}
	if len(info.Schema) > 0 {
		s, err := dag.CompileSchemaJSON(info.Schema)
		if err != nil {
			p.entry.Error = "bad parameter schema: " + schemaError(err)
			return p
		}
		spec.Schema, spec.SchemaJSON = s, info.Schema
	}
	p.spec = spec
	return p
}

// describe runs the plugin's process just long enough for a Describe.
func (c *Config) describe(ctx context.Context, cand *candidate) (host.Info, error) {
	dctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	h := host.New(host.Config{
		// Tied to dctx, the process dies at the timeout even while the
		// host still waits for its handshake.
		Command: func(string) (*exec.Cmd, error) { return exec.CommandContext(dctx, cand.path), nil },
		Logger:  c.Logger,
	})
	defer h.Close()
	info, err := h.Describe(dctx, cand.name)
	if err != nil && ctx.Err() == nil && dctx.Err() != nil {
		return host.Info{}, fmt.Errorf("no answer within %v: %w", c.Timeout, err)
	}
	return info, err
}

// rawJSON is doc as a JSON value for Entry.Schema: nil (null) when it is
// empty or not JSON.
func rawJSON(doc []byte) json.RawMessage {
	if len(doc) == 0 || !json.Valid(doc) {
		return nil
	}
	return json.RawMessage(doc)
}
