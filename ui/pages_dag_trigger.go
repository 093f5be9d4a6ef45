package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
)

// The trigger tab: a form generated from the DAG's params schema. The
// browser checks types, enums and bounds with HTML5 attributes before it
// submits; the server converts the fields to typed params by the same
// schema, checks them, and the backend's Trigger checks them again.

// paramPrefix starts the name of a param's form field: "param.NAME".
const paramPrefix = "param."

// paramField is one param's input on the trigger and backfill forms.
type paramField struct {
	Name  string // the param's name
	Input string // the field's name, param.NAME
	ID    string // the element's id, param-NAME
	// Kind is the control: text, number, checkbox, select or textarea.
	Kind        string
	Type        string // the param's JSON-Schema type; "" for any
	Value       string
	Checked     bool
	Options     []paramOption
	Min, Max    string
	Step        string
	Required    bool
	Description string
	Error       string // the field's problem on a form sent back
}

// paramOption is a choice of an enum param.
type paramOption struct {
	Value    string
	Selected bool
}

// paramFields builds the inputs of a DAG's params. form holds what was
// sent when the form is shown again after an error; nil shows the
// defaults.
func paramFields(ps []*dag.Param, form url.Values, problems map[string]string) []paramField {
	out := make([]paramField, len(ps))
	for i, p := range ps {
		f := paramField{
			Name:        p.Name,
			Input:       paramPrefix + p.Name,
			ID:          "param-" + p.Name,
			Type:        p.Type,
			Required:    paramRequired(p),
			Description: p.Description,
			Error:       problems[p.Name],
		}
		sent, wasSent := form[f.Input]
		value := ""
		if form != nil {
			if wasSent {
				value = sent[0]
			}
		} else if p.HasDefault {
			value = formatParam(p.Default, p.Type == "array" || p.Type == "object")
		}
		switch {
		case p.Enum != nil:
			f.Kind = "select"
			for _, e := range p.Enum {
				ev := formatParam(e, false)
				f.Options = append(f.Options, paramOption{Value: ev, Selected: ev == value})
			}
		case p.Type == "boolean":
			f.Kind = "checkbox"
			if form != nil {
				f.Checked = wasSent && value != "false"
			} else {
				f.Checked = p.Default == true
			}
		case p.Type == "integer", p.Type == "number":
			f.Kind = "number"
			f.Step = "any"
			if p.Type == "integer" {
				f.Step = "1"
			}
			if p.Minimum != nil {
				f.Min = strconv.FormatFloat(*p.Minimum, 'f', -1, 64)
			}
			if p.Maximum != nil {
				f.Max = strconv.FormatFloat(*p.Maximum, 'f', -1, 64)
			}
		case p.Type == "array", p.Type == "object":
			f.Kind = "textarea"
		default:
			f.Kind = "text"
		}
		f.Value = value
		out[i] = f
	}
	return out
}

// formatParam writes a param value as its field shows it: a string as it
// is, anything else as JSON (indented for arrays and objects).
func formatParam(v any, indent bool) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// formParams converts the param.NAME fields of a form to typed params by
// the DAG's schema. A field left empty is not given, so the param takes its
// default (or is reported missing); a string param's empty field is the
// empty string when the param has a default to override. A checkbox sends
// nothing when unticked: false. problems holds one message per param at
// fault, each naming it.
func formParams(ps []*dag.Param, form url.Values) (params map[string]any, problems map[string]string) {
	params = map[string]any{}
	problems = map[string]string{}
	for k := range form {
		if name, ok := strings.CutPrefix(k, paramPrefix); ok && !slices.ContainsFunc(ps, func(p *dag.Param) bool { return p.Name == name }) {
			problems[name] = fmt.Sprintf("param %s: unknown param", name)
		}
	}
	for _, p := range ps {
		vals, sent := form[paramPrefix+p.Name]
		s := ""
		if sent {
			s = vals[0]
		}
		switch {
		case p.Enum != nil:
			if s == "" && !slices.ContainsFunc(p.Enum, func(e any) bool { return e == "" }) {
				continue
			}
			i := slices.IndexFunc(p.Enum, func(e any) bool { return formatParam(e, false) == s })
			if i < 0 {
				problems[p.Name] = fmt.Sprintf("param %s: %q is not one of %s", p.Name, s, enumList(p.Enum))
				continue
			}
			params[p.Name] = p.Enum[i]
		case p.Type == "boolean":
			params[p.Name] = sent && s != "false"
		case p.Type == "string":
			if s == "" && !p.HasDefault {
				continue
			}
			params[p.Name] = s
		default:
			if strings.TrimSpace(s) == "" {
				continue
			}
			v, err := p.Coerce(strings.TrimSpace(s))
			if err != nil {
				problems[p.Name] = err.Error()
				continue
			}
			params[p.Name] = dag.NormalizeNumbers(v)
		}
	}
	return params, problems
}

func enumList(enum []any) string {
	s := make([]string, len(enum))
	for i, e := range enum {
		s[i] = formatParam(e, false)
	}
	return strings.Join(s, ", ")
}

// paramProblems files the parts of a message from ResolveParams or the
// backend ("param a: ...; param b is required ...") under the params they
// name, keeping what a param already has, and returns the parts that name
// none.
func paramProblems(ps []*dag.Param, msg string, into map[string]string) (rest []string) {
	for _, part := range strings.Split(msg, "; ") {
		named := false
		for _, p := range ps {
			i := strings.Index(part, "param "+p.Name+":")
			if i < 0 {
				i = strings.Index(part, "param "+p.Name+" ")
			}
			if i < 0 {
				continue
			}
			named = true
			if _, seen := into[p.Name]; !seen {
				into[p.Name] = part[i:]
			}
		}
		if !named {
			rest = append(rest, part)
		}
	}
	return rest
}

// checkFormParams reads the params of a form (formParams) and checks them
// against the DAG's schema as the backend will: problems holds one message
// per param at fault, rest the problems that name no param.
func checkFormParams(g *dag.DAG, form url.Values) (params map[string]any, problems map[string]string, rest []string) {
	params, problems = formParams(g.Params, form)
	if _, err := g.ResolveParams(params); err != nil {
		rest = paramProblems(g.Params, err.Error(), problems)
	}
	return params, problems, rest
}

// problemMessages lists the problems of a form's params, in the order of
// the form.
func problemMessages(ps []*dag.Param, problems map[string]string) []string {
	var msgs []string
	for _, p := range ps {
		if m, ok := problems[p.Name]; ok {
			msgs = append(msgs, m)
		}
	}
	var unknown []string
	for name, m := range problems {
		if !slices.ContainsFunc(ps, func(p *dag.Param) bool { return p.Name == name }) {
			unknown = append(unknown, m)
		}
	}
	slices.Sort(unknown)
	return append(msgs, unknown...)
}

// triggerView is the trigger tab.
type triggerView struct {
	Action      string
	LogicalDate string
	// LogicalDateError is the problem with the logical date sent back.
	LogicalDateError string
	Timezone         string
	// Scheduled offers the latest-interval checkbox, which
	// LatestInterval ticks (docs/dag-format.md#manual-runs).
	Scheduled, LatestInterval bool
	// Params are the inputs of the params, rendered from paramFields.
	Params    template.HTML
	HasParams bool
	// HasRequired says some param must be filled in (marked *).
	HasRequired bool
	// Error names every field at fault when the form comes back.
	Error      string
	CanOperate bool
}

// newTriggerForm is the trigger tab of g, its fields not yet filled in.
func newTriggerForm(g *dag.DAG) triggerView {
	return triggerView{
		Action:      dagHref(g.ID, "trigger"),
		Timezone:    dagTimezone(g),
		HasParams:   len(g.Params) > 0,
		HasRequired: slices.ContainsFunc(g.Params, paramRequired),
		Scheduled:   g.Timetable != nil,
	}
}

// paramRequired says a param has to be given a value: it has no default,
// and is not a boolean (an unticked box is false).
func paramRequired(p *dag.Param) bool { return !p.HasDefault && p.Type != "boolean" }

func (s *Server) dagTriggerPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	v := newTriggerForm(info.DAG)
	v.CanOperate = mayOperate(c)
	if v.Params, err = s.partial("param-fields", paramFields(info.DAG.Params, nil, nil)); err != nil {
		return err
	}
	return s.renderDAGTab(c, http.StatusOK, info, "trigger", v)
}

// triggerDAG takes the trigger form: a manual run, then the run's page.
// A problem sends the form back with 400 (409 when the logical date
// already has a run), the values kept and the fields at fault named.
func (s *Server) triggerDAG(c echo.Context) error {
	info, form, err := s.lookupDAGForm(c)
	if err != nil {
		return err
	}
	g := info.DAG
	v := newTriggerForm(g)
	v.LogicalDate = form.Get("logical_date")
	v.LatestInterval = form.Get("latest_interval") != ""
	v.CanOperate = true
	req := scheduler.TriggerRequest{LatestInterval: v.LatestInterval}
	var msgs []string
	if v.LogicalDate != "" {
		t, err := parseFormTime(v.LogicalDate, g.Location)
		if err != nil {
			v.LogicalDateError = "logical_date: " + err.Error()
			msgs = append(msgs, v.LogicalDateError)
		} else {
			t = t.UTC()
			req.LogicalDate = &t
		}
	}
	params, problems, rest := checkFormParams(g, form)
	msgs = append(msgs, rest...)
	status := http.StatusBadRequest
	if len(problems) == 0 && len(msgs) == 0 {
		req.Params = params
		run, err := s.backend.Trigger(c.Request().Context(), g.ID, req)
		if err == nil {
			return c.Redirect(http.StatusSeeOther, runHref(run.DAGID, run.RunID))
		}
		code, msg := classify(err)
		if code >= 500 {
			return err
		}
		status = code
		msgs = append(msgs, paramProblems(g.Params, msg, problems)...)
	}
	msgs = append(msgs, problemMessages(g.Params, problems)...)
	v.Error = strings.Join(msgs, "; ")
	if v.Params, err = s.partial("param-fields", paramFields(g.Params, form, problems)); err != nil {
		return err
	}
	return s.renderDAGTab(c, status, info, "trigger", v)
}

// lookupDAGForm returns the DAG the request's {dag} names, or a 404 error,
// and the form sent to it, or a 400 error.
func (s *Server) lookupDAGForm(c echo.Context) (scheduler.DAGInfo, url.Values, error) {
	info, err := s.lookupDAG(c)
	if err != nil {
		return info, nil, err
	}
	form, err := c.FormParams()
	if err != nil {
		return info, nil, badRequest("form: %v", err)
	}
	return info, form, nil
}

// formTimeLayouts are the times a form field takes besides RFC 3339, read
// in the DAG's timezone: what <input type=datetime-local> and type=date
// send, as the CLI's --date takes them.
var formTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05", time.DateOnly}

// parseFormTime reads a time from a form field.
func parseFormTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range formTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a time such as 2026-01-31T03:00 (in the DAG's timezone, " + loc.String() + ") or RFC 3339, got " + strconv.Quote(s))
}

func dagTimezone(g *dag.DAG) string { return dagLoc(g).String() }

// dagLoc is the timezone of g, which may be nil: UTC unless it names one.
func dagLoc(g *dag.DAG) *time.Location {
	if g == nil || g.Location == nil {
		return time.UTC
	}
	return g.Location
}
