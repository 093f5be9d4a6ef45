package ui_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/ui"
)

// TestOpenAPICoversRoutes checks that the OpenAPI document lists exactly the
// API routes the server registers (the browser pages and their assets are
// not API), and that every $ref in it resolves.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	e, ok := ui.New(k.Scheduler, ui.Options{}).Handler().(*echo.Echo)
	if !ok {
		t.Fatal("Handler is not an *echo.Echo")
	}
	const self = "GET /api/v1/openapi.json"
	param := regexp.MustCompile(`:(\w+)`)
	var routes []string
	for _, r := range e.Routes() {
		route := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		if route != self && isAPIRoute(r.Path) {
			routes = append(routes, route)
		}
	}
	slices.Sort(routes)

	resp := call(t, "GET", srv.URL+"/api/v1/openapi.json", "")
	if resp.status != 200 || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s", resp.status, resp.header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	resp.decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if route := strings.ToUpper(method) + " " + path; route != self {
				documented = append(documented, route)
			}
		}
	}
	slices.Sort(documented)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("registered routes (-) vs documented (+):\n%s", diff)
	}

	// Every $ref points at something in the document.
	var whole map[string]any
	resp.decode(t, &whole)
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/([^"]+)"`).FindAllStringSubmatch(string(resp.body), -1) {
		var node any = whole
		for _, part := range strings.Split(ref[1], "/") {
			m, ok := node.(map[string]any)
			if !ok || m[part] == nil {
				t.Errorf("$ref #/%s does not resolve", ref[1])
				break
			}
			node = m[part]
		}
	}
}

// isAPIRoute tells the routes the OpenAPI document describes from the
// browser pages.
func isAPIRoute(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/metrics"
}
