package dag_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

func TestOutlets(t *testing.T) {
	g := mustParse(t, `
id: producer
tasks:
  - id: load
    plugin: shell
    with: {command: "true"}
    outlets: [warehouse://sales/daily, "s3://lake/orders", file:///data/x.csv, postgres://db/table]
  - id: report
    depends_on: [load]
    plugin: shell
    with: {command: "true"}
`)
	want := []string{"warehouse://sales/daily", "s3://lake/orders", "file:///data/x.csv", "postgres://db/table"}
	if diff := cmp.Diff(want, g.Task("load").Outlets); diff != "" {
		t.Errorf("load's outlets (-want +got):\n%s", diff)
	}
	if o := g.Task("report").Outlets; o != nil {
		t.Errorf("report's outlets = %q, want none", o)
	}
}

func TestScheduleForms(t *testing.T) {
	const tasks = `
tasks:
  - id: a
    plugin: shell
    with: {command: "true"}
`
	for _, tc := range []struct {
		name, schedule string
		cron           string
		datasets       *dag.DatasetSchedule
		text           string
	}{
		{name: "string", schedule: `"0 3 * * *"`, cron: "0 3 * * *", text: "0 3 * * *"},
		{name: "cron only", schedule: `{cron: "0 3 * * *"}`, cron: "0 3 * * *", text: "0 3 * * *"},
		{name: "datasets", schedule: `{datasets: [s3://lake/orders, warehouse://sales/daily]}`,
			datasets: &dag.DatasetSchedule{URIs: []string{"s3://lake/orders", "warehouse://sales/daily"}},
			text:     "datasets: s3://lake/orders, warehouse://sales/daily"},
		{name: "all", schedule: `{datasets: {all: [s3://lake/orders]}}`,
			datasets: &dag.DatasetSchedule{URIs: []string{"s3://lake/orders"}},
			text:     "datasets: s3://lake/orders"},
		{name: "any", schedule: `{datasets: {any: [s3://lake/orders, warehouse://sales/daily]}}`,
			datasets: &dag.DatasetSchedule{URIs: []string{"s3://lake/orders", "warehouse://sales/daily"}, Any: true},
			text:     "datasets (any): s3://lake/orders, warehouse://sales/daily"},
		{name: "combined", schedule: `{cron: "@daily", datasets: {any: [s3://lake/orders]}}`, cron: "@daily",
			datasets: &dag.DatasetSchedule{URIs: []string{"s3://lake/orders"}, Any: true},
			text:     "@daily + datasets (any): s3://lake/orders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "id: d\nschedule: " + tc.schedule + "\n"
			if tc.cron != "" {
				src += "start_date: 2026-01-01\n"
			}
			g := mustParse(t, src+tasks)
			if g.Schedule != tc.cron {
				t.Errorf("Schedule = %q, want %q", g.Schedule, tc.cron)
			}
			if (g.Timetable != nil) != (tc.cron != "") {
				t.Errorf("Timetable = %v, want one only with a cron", g.Timetable)
			} else if g.Timetable != nil && g.Timetable.Spec() != tc.cron {
				t.Errorf("Timetable.Spec() = %q, want %q", g.Timetable.Spec(), tc.cron)
			}
			if diff := cmp.Diff(tc.datasets, g.Datasets); diff != "" {
				t.Errorf("Datasets (-want +got):\n%s", diff)
			}
			if got := g.ScheduleText(); got != tc.text {
				t.Errorf("ScheduleText() = %q, want %q", got, tc.text)
			}
		})
	}
	g := mustParse(t, "id: manual"+tasks)
	if g.Schedule != "" || g.Timetable != nil || g.Datasets != nil || g.ScheduleText() != "" {
		t.Errorf("manual DAG: Schedule %q, Timetable %v, Datasets %v, ScheduleText %q; want none",
			g.Schedule, g.Timetable, g.Datasets, g.ScheduleText())
	}
}

func TestTriggeringEventsAndJSON(t *testing.T) {
	g := mustParse(t, `
id: consumer
schedule: {datasets: [s3://lake/orders]}
tasks:
  - id: square
    plugin: shell
    with: {command: "true"}
  - id: use
    depends_on: [square]
    plugin: shell
    with: {command: "run {{ json .triggering_events | shellquote }}"}
    env:
      EVENTS: "{{ json .triggering_events }}"
      N: "{{ len .triggering_events }}"
      OUT: "{{ json .outputs.square }}"
      FIRST: "{{ range .triggering_events }}{{ .uri }}@{{ .time }}{{ end }}"
    cache: {key: "{{ json .triggering_events }}"}
`)
	use := g.Task("use")
	render := func(v dag.Values) (map[string]string, error) {
		data := v.Data(g.Location)
		out := map[string]string{}
		cmd, err := use.With["command"].(*dag.Template).Render(data)
		if err != nil {
			return nil, err
		}
		out["command"] = cmd
		for _, e := range use.Env {
			if out[e.Name], err = e.Value.Render(data); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	v := dag.Values{Outputs: map[string]any{"square": map[string]any{"n": "4", "html": "<a&b>"}}}
	got, err := render(v)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"command": "run '[]'", "EVENTS": "[]", "N": "0", "OUT": `{"html":"<a&b>","n":"4"}`, "FIRST": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered without events (-want +got):\n%s", diff)
	}

	v.TriggeringEvents = []map[string]any{{
		"uri": "s3://lake/orders", "time": "2026-03-01T03:00:00Z",
		"source_dag_id": "producer", "source_run_id": "scheduled__2026-03-01T00:00:00Z", "source_task_id": "load",
		"extra": map[string]any{"rows": 42},
	}}
	got, err = render(v)
	if err != nil {
		t.Fatal(err)
	}
	events := `[{"extra":{"rows":42},"source_dag_id":"producer","source_run_id":"scheduled__2026-03-01T00:00:00Z","source_task_id":"load","time":"2026-03-01T03:00:00Z","uri":"s3://lake/orders"}]`
	want = map[string]string{"command": "run '" + events + "'", "EVENTS": events, "N": "1", "OUT": `{"html":"<a&b>","n":"4"}`,
		"FIRST": "s3://lake/orders@2026-03-01T03:00:00Z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered with an event (-want +got):\n%s", diff)
	}

	v.Outputs["square"].(map[string]any)["n"] = math.Inf(1)
	if _, err := render(v); err == nil || !strings.Contains(err.Error(), "json") {
		t.Errorf("json of an infinity: err = %v, want an error from json", err)
	}
}

func TestTriggeringEventsAlwaysAList(t *testing.T) {
	ev, ok := dag.Values{LogicalDate: time.Now()}.Data(time.UTC)["triggering_events"].([]map[string]any)
	if !ok || ev == nil || len(ev) != 0 {
		t.Errorf(".triggering_events = %#v, want an empty list", ev)
	}
}

// TestWhenSeesTriggeringEvents: a `when` reads the events as templates do.
func TestWhenSeesTriggeringEvents(t *testing.T) {
	g := mustParse(t, `
id: consumer
schedule: {datasets: {any: [s3://lake/orders, s3://lake/fx]}}
tasks:
  - id: orders_only
    plugin: shell
    when: any(triggering_events, .uri == "s3://lake/orders")
    with: {command: "true"}
`)
	when := g.Task("orders_only").When
	for _, tt := range []struct {
		uris []string
		want bool
	}{{nil, false}, {[]string{"s3://lake/fx"}, false}, {[]string{"s3://lake/fx", "s3://lake/orders"}, true}} {
		v := dag.Values{LogicalDate: time.Now()}
		for _, uri := range tt.uris {
			v.TriggeringEvents = append(v.TriggeringEvents, map[string]any{"uri": uri})
		}
		if got, err := when.Eval(v, g.Location); err != nil || got != tt.want {
			t.Errorf("events of %v: %v, %v; want %v", tt.uris, got, err, tt.want)
		}
	}
}

// TestSelfTriggeringWarns: a DAG scheduled on a dataset one of its tasks
// updates loads, with a warning at its schedule.
func TestSelfTriggeringWarns(t *testing.T) {
	g := mustParse(t, `
id: selfish
schedule: {datasets: [lake://x, lake://y]}
tasks:
  - {id: a, plugin: shell, outlets: [lake://z, lake://y], with: {command: "true"}}
`)
	if len(g.Warnings) != 1 || g.Warnings[0].Line != 3 || !strings.Contains(g.Warnings[0].Msg, "task a updates lake://y, which this DAG is scheduled on") {
		t.Errorf("warnings: %v", g.Warnings)
	}
	g = mustParse(t, `
id: fine
schedule: {datasets: [lake://x]}
tasks:
  - {id: a, plugin: shell, outlets: [lake://z], with: {command: "true"}}
`)
	if len(g.Warnings) != 0 {
		t.Errorf("warnings: %v", g.Warnings)
	}
}

// TestCheckDatasetURI: what external producers post is held to what DAG
// files may write.
func TestCheckDatasetURI(t *testing.T) {
	for uri, want := range map[string]string{
		"s3://lake/orders":                  "",
		"":                                  "must not be empty",
		"orders":                            "needs a scheme",
		"s3://lake/a b":                     "whitespace",
		"s3://lake/\x00":                    "not a dataset URI",
		"s3://" + strings.Repeat("a", 1100): "at most 1024 bytes",
	} {
		err := dag.CheckDatasetURI(uri)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckDatasetURI(%.20q) = %v, want %q", uri, err, want)
		}
	}
}
