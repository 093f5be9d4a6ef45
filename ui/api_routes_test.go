package ui_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/ui"
)

// TestEveryRouteBadInput walks every API route the server registers, so a
// new route is covered as soon as it exists: with unknown ids in its path
// it answers 404, and, when it takes a body, a malformed body and one with
// an unknown field are 400. Every answer is the JSON error of the API.
// (TestEveryRouteNeedsItsRole covers 401 and 403 the same way.)
func TestEveryRouteBadInput(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	run, err := k.Trigger(t.Context(), "churn", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := ui.New(k.Scheduler, ui.Options{}).Handler().(*echo.Echo)
	if !ok {
		t.Fatal("Handler is not an *echo.Echo")
	}
	known := map[string]string{"dag": "churn", "run": run.RunID, "task": "extract", "name": "default_pool", "id": "x"}
	// Routes whose path names something that need not exist: PUT creates
	// a pool.
	creates := map[string]bool{"PUT /api/v1/pools/:name": true}
	param := regexp.MustCompile(`:(\w+)`)
	fill := func(path string, unknown bool) string {
		return param.ReplaceAllStringFunc(path, func(p string) string {
			if unknown {
				return "no-such-" + p[1:]
			}
			return known[p[1:]]
		})
	}
	takesBody := map[string]bool{http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true}
	checked := 0
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		route := r.Method + " " + r.Path
		t.Run(route, func(t *testing.T) {
			wantJSONError := func(resp response, status int, what string) {
				t.Helper()
				if resp.status != status {
					t.Errorf("%s: %d %s, want %d", what, resp.status, resp.body, status)
					return
				}
				var body ui.ErrorBody
				resp.decode(t, &body)
				if body.Error == "" {
					t.Errorf("%s: no error message in %s", what, resp.body)
				}
			}
			if strings.Contains(r.Path, ":") && !creates[route] {
				body := ""
				if takesBody[r.Method] {
					body = "{}"
				}
				wantJSONError(call(t, r.Method, srv.URL+fill(r.Path, true), body), http.StatusNotFound, "unknown ids")
				checked++
			}
			if takesBody[r.Method] {
				url := srv.URL + fill(r.Path, false)
				wantJSONError(call(t, r.Method, url, `{"unterminated": `), http.StatusBadRequest, "malformed body")
				wantJSONError(call(t, r.Method, url, `{"no_such_field": 1}`), http.StatusBadRequest, "unknown field")
				checked++
			}
		})
	}
	if checked < 15 {
		t.Errorf("only %d checks ran: are the routes registered?", checked)
	}
}
