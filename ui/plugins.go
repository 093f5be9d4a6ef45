package ui

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Plugin is a stage plugin as GET /api/v1/plugins and `kiln plugins list`
// show it.
type Plugin struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source is "builtin" or the path of the plugin's executable on the
	// server.
	Source string `json:"source"`
	Sensor bool   `json:"sensor"`
	// Schema is the JSON Schema of the plugin's `with` parameters; null
	// when it has none or did not load.
	Schema json.RawMessage `json:"schema"`
	// Error says why the plugin did not load; "" when it did.
	Error string `json:"error"`
	// Warning says why the plugin's tasks cannot run on the server's
	// machine now, although it loaded: the docker stage with no Docker
	// Engine answering. Omitted when nothing is known to be wrong.
	Warning string `json:"warning,omitempty"`
}

func (s *Server) listPlugins(c echo.Context) error {
	out := []Plugin{}
	if s.plugins != nil {
		out = append(out, s.plugins.Plugins()...)
	}
	out, err := pageOf(c, out)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
