package dag

import "github.com/santhosh-tekuri/jsonschema/v6"

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
}

// MapCatalog is a Catalog over a fixed set of plugins.
type MapCatalog map[string]*PluginSpec

// Plugin implements Catalog.
func (c MapCatalog) Plugin(name string) (*PluginSpec, bool) {
	p, ok := c[name]
	return p, ok
}
