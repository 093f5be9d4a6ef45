package uitest

import (
	"slices"

	"github.com/kilnhq/kiln/ui"
)

// Plugins is a fake ui.PluginLister: it lists itself. Give it to the
// server as ui.Options.Plugins.
type Plugins []ui.Plugin

var _ ui.PluginLister = Plugins(nil)

// Plugins implements ui.PluginLister.
func (p Plugins) Plugins() []ui.Plugin { return slices.Clone(p) }
