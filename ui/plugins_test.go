package ui_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/ui"
)

// pluginList is a ui.PluginLister that lists itself: the API's plugin
// list over a fixed one, with a plugin of each kind of entry (the real
// lister, over plugin discovery, is cmd/kiln's).
type pluginList []ui.Plugin

func (p pluginList) Plugins() []ui.Plugin { return slices.Clone(p) }

func TestListPlugins(t *testing.T) {
	t.Parallel()
	plugins := pluginList{
		{Name: "echo", Version: "1.2.3", Source: "/home/ada/.kiln/plugins/kiln-plugin-echo", Schema: json.RawMessage(`{"type":"object","required":["message"]}`)},
		{Name: "liar", Source: "/usr/local/bin/kiln-plugin-liar", Error: `the plugin calls itself "someone_else"`},
		{Name: "shell", Version: "0.1.0", Source: "builtin", Schema: json.RawMessage(`{"type":"object"}`)},
		{Name: "wait", Version: "dev", Source: "builtin", Sensor: true},
	}
	srv := serveAPI(t, kilntest.Start(t, kilntest.Options{NoWorker: true}), ui.Options{Plugins: plugins})

	resp := call(t, "GET", srv.URL+"/api/v1/plugins", "")
	if resp.status != 200 {
		t.Fatalf("status = %d (body %s)", resp.status, resp.body)
	}
	var got []ui.Plugin
	resp.decode(t, &got)
	if diff := cmp.Diff([]ui.Plugin(plugins), got, cmp.Comparer(sameJSON)); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	// Every field is always there: a schema that is not known is null,
	// and an error that is not there is "".
	var raw []json.RawMessage
	resp.decode(t, &raw)
	want := []string{"error", "name", "schema", "sensor", "source", "version"}
	for i, r := range raw {
		if diff := cmp.Diff(want, keys(t, r)); diff != "" {
			t.Errorf("keys of plugin %d (-want +got):\n%s", i, diff)
		}
	}
	if got, want := string(raw[3]), `{"name":"wait","version":"dev","source":"builtin","sensor":true,"schema":null,"error":""}`; got != want {
		t.Errorf("plugin 3 = %s, want %s", got, want)
	}

	call(t, "POST", srv.URL+"/api/v1/plugins", "").wantError(t, 405, "method not allowed")
}

func TestListPluginsWithoutLister(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	resp := call(t, "GET", srv.URL+"/api/v1/plugins", "")
	if resp.status != 200 || string(resp.body) != "[]\n" {
		t.Errorf("GET /plugins = %d %q, want 200 []", resp.status, resp.body)
	}
}

// sameJSON compares JSON documents, nil counting as null.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if len(a) > 0 && json.Unmarshal(a, &va) != nil || len(b) > 0 && json.Unmarshal(b, &vb) != nil {
		return false
	}
	return cmp.Equal(va, vb)
}
