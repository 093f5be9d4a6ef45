package ui

import (
	"bytes"
	"embed"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/scheduler"
)

// The browser UI: HTML pages rendered on the server from html/template, one
// stylesheet and one small script, all embedded so that the kiln binary is
// the whole product.
//
// Every page is a template named after the page that defines the blocks
// "title" and "content" and is executed inside layout.html. A part of a
// page that changes while it is open is a block of its own, wrapped in an
// element with data-live="BLOCK"; kiln.js re-fetches the page with the
// header Kiln-Fragment: BLOCK and swaps in the answer, so the server
// renders the same block for the first paint and for every update.

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// fragmentHeader names the block a live update asks for.
const fragmentHeader = "Kiln-Fragment"

// pages holds one template set per page, each the layout plus the page.
type pages map[string]*template.Template

// parsePages parses layout.html with each other template in web/templates.
func parsePages() (pages, error) {
	base, err := template.New("layout.html").ParseFS(templateFS, "web/templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "web/templates/*.html")
	if err != nil {
		return nil, err
	}
	p := pages{}
	for _, name := range names {
		short := strings.TrimSuffix(strings.TrimPrefix(name, "web/templates/"), ".html")
		if short == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, err
		}
		p[short] = t
	}
	return p, nil
}

// pageData is what every page template gets: the page's own data in Data,
// and what the layout needs.
type pageData struct {
	// Title is the page's title, shown in the tab and the heading.
	Title string
	// Nav is the top-level section the page belongs to: dags, backfills,
	// pools, datasets, workers, health.
	Nav string
	// User is who is signed in; nil when auth is off.
	User *Principal
	// CSRF is the token forms send back in the hidden field "csrf".
	CSRF string
	// Events is the event stream whose events refresh the page's live
	// blocks (eventsHref); "" for a page whose blocks poll.
	Events string
	// Data is the page's own data.
	Data any
	// Version is the server's version, for the footer.
	Version string
}

// render answers with a page, or with only one of its blocks when the
// request asks for a fragment (a live update).
func (s *Server) render(c echo.Context, status int, page string, pd pageData) error {
	t, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("no page template %q", page)
	}
	pd.User = principal(c)
	pd.CSRF = csrfToken(c)
	pd.Version = buildinfo.Get().Version
	name := "layout.html"
	if frag := c.Request().Header.Get(fragmentHeader); frag != "" {
		if t.Lookup(frag) == nil {
			return badRequest("%s: no fragment %q on this page", fragmentHeader, frag)
		}
		name = frag
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, pd); err != nil {
		return fmt.Errorf("rendering page %s: %w", page, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", fragmentHeader)
	if name != "layout.html" && status == http.StatusOK {
		// A live update of a block that did not change is answered
		// without it: a large grid is not re-sent every few seconds.
		tag := etag(buf.Bytes())
		h.Set("ETag", tag)
		if c.Request().Header.Get("If-None-Match") == tag {
			return c.NoContent(http.StatusNotModified)
		}
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// eventsHref is the event stream of the changes of a DAG, of one of its
// runs, or with dagID "" of every DAG: what a page whose live blocks show
// runs, task instances or backfills follows (kiln.js).
func eventsHref(dagID, runID string) string {
	q := url.Values{}
	if dagID != "" {
		q.Set("dag", dagID)
	}
	if runID != "" {
		q.Set("run", runID)
	}
	if len(q) == 0 {
		return "/api/v1/events"
	}
	return "/api/v1/events?" + q.Encode()
}

// etag is a strong entity tag for a rendered body.
func etag(body []byte) string {
	h := fnv.New64a()
	h.Write(body)
	return fmt.Sprintf(`"%x-%x"`, h.Sum64(), len(body))
}

// staticHandler serves the embedded stylesheet and script.
func staticHandler() echo.HandlerFunc {
	sub, err := fs.Sub(staticFS, "web/static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}
	h := http.StripPrefix("/ui/static/", http.FileServer(http.FS(sub)))
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// page registers a browser page. Pages that change state are POST forms;
// they need at least the operator role and a valid CSRF token, which
// authorize checks.
func (s *Server) page(method, path string, h echo.HandlerFunc, min Role) {
	s.echo.Add(method, path, h, s.authenticatePage, s.authorize(min))
}

// mustParsePages parses the embedded templates; they are part of the
// binary, so an error is a bug caught by every test.
func mustParsePages() pages {
	p, err := parsePages()
	if err != nil {
		panic(fmt.Sprintf("ui: parsing page templates: %v", err))
	}
	return p
}

// pageRoutes registers the browser pages and their assets.
func (s *Server) pageRoutes(e *echo.Echo) {
	e.GET("/ui/static/*", staticHandler())
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/dags") })
	s.page(http.MethodGet, "/health", s.healthPage, RoleViewer)
	s.dagPageRoutes()
	s.runPageRoutes()
	s.logPageRoutes()
	s.poolPageRoutes()
	s.datasetPageRoutes()
	s.workerPageRoutes()
}

// healthView is the health page: what /healthz says, and the workers in
// short.
type healthView struct {
	Error string // "" when up
	Role  string
	// Alive, Draining and Lost count the workers; NoWorker names the
	// queues whose tasks wait with no live worker pulling them.
	Alive, Draining, Lost int
	NoWorker              []string
}

func (s *Server) healthPage(c echo.Context) error {
	v := healthView{Role: string(s.backend.Role())}
	if err := s.backend.Health(); err != nil {
		v.Error = err.Error()
	}
	for _, w := range s.backend.Workers() {
		switch {
		case w.State == scheduler.WorkerLost:
			v.Lost++
		case w.Draining:
			v.Draining++
		default:
			v.Alive++
		}
	}
	// The queues need the scheduler's loop; a scheduler that is down
	// shows no queue.
	if v.Error == "" {
		qs, err := s.backend.Queues(c.Request().Context())
		if err != nil {
			return err
		}
		for i := range qs {
			if qs[i].NoWorker() {
				v.NoWorker = append(v.NoWorker, qs[i].Name)
			}
		}
	}
	return s.render(c, http.StatusOK, "health", pageData{Title: "Health", Nav: "health", Data: v})
}
