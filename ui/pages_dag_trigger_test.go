package ui_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

func TestTriggerForm(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.get("/dags/typed/trigger")
	p.wantStatus(t, http.StatusOK)
	form := p.has(t, "form", "id=trigger-form")
	if form["method"] != "post" || form["action"] != "/dags/typed/trigger" {
		t.Errorf("form = %v", form)
	}
	if n := p.count("input", "name=csrf", "type=hidden"); n != 2 {
		t.Errorf("%d csrf fields, want 2: the pause toggle's and the form's", n)
	}
	p.has(t, "input", "name=logical_date", "type=datetime-local")
	p.has(t, "button", "id=trigger-submit", "type=submit")

	// One input per param, typed by its schema, defaults filled in.
	name := p.has(t, "input", "name=param.name", "type=text", "required")
	if name["value"] != "" {
		t.Errorf("param.name: value %q, want empty (no default)", name["value"])
	}
	count := p.has(t, "input", "name=param.count", "type=number", "value=3", "min=1", "max=10", "step=1")
	if _, req := count["required"]; req {
		t.Error("param.count has a default, yet is required")
	}
	p.has(t, "input", "name=param.frac", "type=number", "value=0.5", "min=0", "max=1", "step=any")
	p.has(t, "input", "name=param.dry", "type=checkbox", "value=true", "checked")
	p.has(t, "select", "name=param.region")
	// A field is marked *, so the note says what * means.
	p.has(t, "span", "id=required-note")
	if n := pc.get("/dags/adhoc/trigger").count("span", "id=required-note"); n != 0 {
		t.Error("adhoc has no required param, yet its form explains the * mark")
	}
	p.has(t, "option", "value=eu", "selected")
	p.has(t, "option", "value=us")
	p.has(t, "textarea", "name=param.tags")
	p.has(t, "textarea", "name=param.opts")
	if !strings.Contains(p.body, "[\n  &#34;x&#34;,\n  &#34;y&#34;\n]") {
		t.Errorf("param.tags does not hold its default as JSON:\n%s", p.body)
	}
	if !strings.Contains(p.text(), "Who runs it") {
		t.Error("a param's description is not shown")
	}

	// A DAG without params says so.
	none := pc.get("/dags/adhoc/trigger")
	none.wantStatus(t, http.StatusOK)
	none.has(t, "form", "id=trigger-form")
	if none.count("input", "name=param.") != 0 || !strings.Contains(none.text(), "no params") {
		t.Error("adhoc's form is not empty of params")
	}
}

// triggerForm is the typed DAG's form as a browser sends it, defaults
// filled in, with changes.
func triggerForm(changes map[string]string, drop ...string) url.Values {
	f := url.Values{
		"csrf":         {""},
		"logical_date": {""},
		"param.name":   {"ann"},
		"param.count":  {"3"},
		"param.frac":   {"0.5"},
		"param.dry":    {"true"},
		"param.region": {"eu"},
		"param.tags":   {`["x", "y"]`},
		"param.opts":   {`{"k": 1}`},
	}
	for k, v := range changes {
		f.Set(k, v)
	}
	for _, k := range drop {
		f.Del(k)
	}
	return f
}

func TestTriggerRoundTrip(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.post("/dags/typed/trigger", triggerForm(map[string]string{
		"logical_date": "2026-03-01T04:05",
		"param.count":  "7",
		"param.frac":   "0.25",
		"param.region": "us",
		"param.tags":   `["a", 2]`,
	}, "param.dry"))
	p.wantStatus(t, http.StatusSeeOther)
	runID := "manual__2026-03-01T04:05:00Z"
	if want := "/dags/typed/runs/" + runID; p.location != want {
		t.Errorf("Location = %q, want %q", p.location, want)
	}
	run, err := pc.k.Store().GetRun("typed", runID)
	if err != nil {
		t.Fatal(err)
	}
	// The params as stored, JSON numbers read back as float64.
	want := map[string]any{
		"name": "ann", "count": 7.0, "frac": 0.25, "dry": false, "region": "us",
		"tags": []any{"a", 2.0}, "opts": map[string]any{"k": 1.0},
	}
	if !reflect.DeepEqual(run.Params, want) {
		t.Errorf("params = %#v\nwant %#v", run.Params, want)
	}
	if !run.LogicalDate.Equal(time.Date(2026, 3, 1, 4, 5, 0, 0, time.UTC)) {
		t.Errorf("logical date = %v", run.LogicalDate)
	}
}

func TestTriggerLogicalDateInDAGTimezone(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.post("/dags/churn/trigger", url.Values{"logical_date": {"2026-03-01T04:05"}, "param.region": {"eu"}, "param.sample_frac": {"1"}})
	p.wantStatus(t, http.StatusSeeOther)
	// Europe/Berlin is UTC+1 in March.
	if want := "/dags/churn/runs/manual__2026-03-01T03:05:00Z"; p.location != want {
		t.Errorf("Location = %q, want %q", p.location, want)
	}
}

func TestTriggerBadValues(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		field   string // the input marked invalid
		message string // what the banner says
	}{
		{"not an integer", triggerForm(map[string]string{"param.count": "many"}), 400, "param.count", `param count: "many" is not an integer`},
		{"above maximum", triggerForm(map[string]string{"param.count": "11"}), 400, "param.count", "param count"},
		{"below minimum", triggerForm(map[string]string{"param.frac": "-1"}), 400, "param.frac", "param frac"},
		{"not in enum", triggerForm(map[string]string{"param.region": "mars"}), 400, "param.region", `param region: "mars" is not one of eu, us`},
		{"bad JSON", triggerForm(map[string]string{"param.opts": "{k: 1"}), 400, "param.opts", "param opts"},
		{"wrong JSON type", triggerForm(map[string]string{"param.tags": `{"a": 1}`}), 400, "param.tags", "param tags"},
		{"required missing", triggerForm(map[string]string{"param.name": ""}), 400, "param.name", "param name is required"},
		{"bad logical date", triggerForm(map[string]string{"logical_date": "yesterday"}), 400, "logical_date", "logical_date: want a time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := &pageClient{t: t, k: pc.k, srv: pc.srv}
			p := pc.post("/dags/typed/trigger", tc.form)
			p.wantStatus(t, tc.status)
			p.has(t, "div", "id=trigger-error", "class~=banner", "class~=error")
			if banner := p.text(); !strings.Contains(banner, tc.message) {
				t.Errorf("the page does not say %q:\n%s", tc.message, banner)
			}
			p.has(t, "form", "id=trigger-form")
			if p.count("input", "name="+tc.field, "aria-invalid=true")+p.count("select", "name="+tc.field, "aria-invalid=true")+p.count("textarea", "name="+tc.field, "aria-invalid=true") != 1 {
				t.Errorf("%s is not marked invalid", tc.field)
			}
			// Values are kept.
			for k, v := range tc.form {
				if !strings.HasPrefix(k, "param.") || v[0] == "" {
					continue
				}
				switch k {
				case "param.region":
					if v[0] != "mars" {
						p.has(t, "option", "value="+v[0], "selected")
					}
				case "param.tags", "param.opts":
					if !strings.Contains(p.text(), v[0]) {
						t.Errorf("%s: %q is not kept", k, v[0])
					}
				case "param.dry":
					p.has(t, "input", "name="+k, "checked")
				default:
					p.has(t, "input", "name="+k, "value="+v[0])
				}
			}
			if _, n, err := pc.k.Store().ListRuns(store.RunQuery{}); err != nil || n != 0 {
				t.Errorf("%d runs made (%v), want none", n, err)
			}
		})
	}
}

func TestTriggerConflict(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	form := triggerForm(map[string]string{"logical_date": "2026-03-01T00:00:00Z"})
	pc.post("/dags/typed/trigger", form).wantStatus(t, http.StatusSeeOther)
	p := pc.post("/dags/typed/trigger", form)
	p.wantStatus(t, http.StatusConflict)
	p.has(t, "div", "id=trigger-error")
	if !strings.Contains(p.text(), "already has a run") {
		t.Errorf("the conflict is not explained:\n%s", p.text())
	}
	p.has(t, "input", "name=logical_date", "value=2026-03-01T00:00:00Z")
}

func TestTriggerUnknownDAG(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	pc.get("/dags/nope/trigger").wantStatus(t, http.StatusNotFound)
	pc.post("/dags/nope/trigger", url.Values{}).wantStatus(t, http.StatusNotFound)
}

func TestTriggerNamesEveryBadField(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.post("/dags/typed/trigger", triggerForm(map[string]string{"param.count": "11", "param.opts": "{bad", "param.nope": "1"}))
	p.wantStatus(t, http.StatusBadRequest)
	text := p.text()
	for _, want := range []string{"param count", "param opts", `param nope: unknown param`} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q:\n%s", want, text)
		}
	}
	p.has(t, "input", "name=param.count", "aria-invalid=true")
	p.has(t, "textarea", "name=param.opts", "aria-invalid=true")
}
