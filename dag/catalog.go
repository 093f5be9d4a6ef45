package dag

import (
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Catalog tells the loader which plugins exist and what they accept. The
// plugins package provides the built-in catalog; plugins found at run time
// add theirs.
type Catalog interface {
	Plugin(name string) (*PluginSpec, bool)
}

// PluginSpec is what the loader needs to know about a stage plugin.
type PluginSpec struct {
	Name   string
	Sensor bool
	// Schema validates the task's `with` mapping; nil accepts anything.
	Schema *jsonschema.Schema
	// SchemaJSON is the document Schema was compiled from, for showing to
	// people; nil when there is none.
	SchemaJSON []byte
}

// Explainer is implemented by a Catalog that can say why it does not know
// a plugin, such as one that was found but failed to load. The loader adds
// the reason to its "unknown plugin" error.
type Explainer interface {
	// Explain returns why the named plugin is unknown, or "".
	Explain(name string) string
}

// unknownPlugin is the loader's message for a plugin c does not know.
func unknownPlugin(c Catalog, name string) string {
	if e, ok := c.(Explainer); ok {
		if why := e.Explain(name); why != "" {
			return fmt.Sprintf("unknown plugin %q: %s", name, why)
		}
	}
	return fmt.Sprintf("unknown plugin %q", name)
}

// MapCatalog is a Catalog over a fixed set of plugins.
type MapCatalog map[string]*PluginSpec

// Plugin implements Catalog.
func (c MapCatalog) Plugin(name string) (*PluginSpec, bool) {
	p, ok := c[name]
	return p, ok
}
