package dag

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/kilnhq/kiln/dag/timetable"
)

// DatasetSchedule is a DAG's schedule on datasets (docs/dag-format.md#datasets).
type DatasetSchedule struct {
	URIs []string // as written, in file order, no duplicates
	Any  bool     // any one of them updated triggers a run; else all of them
}

// ScheduleText is the DAG's schedule as people read it: the cron spec as
// written, "datasets: A, B" (or "datasets (any): A, B"), or both joined
// with " + "; "" for a manual-only DAG.
func (d *DAG) ScheduleText() string {
	var parts []string
	if d.Schedule != "" {
		parts = append(parts, d.Schedule)
	}
	if ds := d.Datasets; ds != nil {
		label := "datasets"
		if ds.Any {
			label = "datasets (any)"
		}
		parts = append(parts, label+": "+strings.Join(ds.URIs, ", "))
	}
	return strings.Join(parts, " + ")
}

var (
	scheduleKeys     = []string{"cron", "datasets"}
	datasetCondition = []string{"any", "all"}
)

// schedule reads `schedule`: a cron spec, or a mapping of a cron spec,
// datasets or both.
func (d *decoder) schedule(g *DAG, f map[string]pair) {
	p, ok := f["schedule"]
	if !ok || p.val.isNull() {
		return
	}
	if p.val.kind != mapNode {
		spec, ok := p.val.str()
		if !ok {
			d.errAt(p.val, "schedule must be a cron expression such as \"0 3 * * *\", or a mapping such as {datasets: [URI, …]}, got %s", p.val.describe())
			return
		}
		d.cron(g, f, p, spec, "schedule")
		return
	}
	sf := d.fields(p.val, scheduleKeys, "schedule")
	dp, hasDatasets := sf["datasets"]
	cp, hasCron := sf["cron"]
	if !hasDatasets && !hasCron {
		if len(sf) == len(p.val.pairs) { // unknown keys are reported already
			d.errAt(p.val, "schedule needs cron, datasets or both, such as {datasets: [s3://bucket/key]} or {cron: \"0 3 * * *\", datasets: [s3://bucket/key]}")
		}
		return
	}
	if hasDatasets {
		g.Datasets = d.datasetSchedule(dp.val)
	}
	if hasCron {
		spec, ok := cp.val.str()
		if !ok {
			d.errAt(cp.val, "schedule.cron must be a cron expression such as \"0 3 * * *\" or @daily, got %s", cp.val.describe())
			return
		}
		d.cron(g, f, cp, spec, "schedule.cron")
	}
}

// cron checks the cron spec that p gives, named what in messages, and
// builds the timetable.
func (d *decoder) cron(g *DAG, f map[string]pair, p pair, spec, what string) {
	g.Schedule = spec
	if err := timetable.ValidateSpec(spec); err != nil {
		d.errAt(p.val, "%s: %v", what, err)
		return
	}
	if _, ok := f["start_date"]; !ok {
		d.errAt(p.key, "start_date is required with a schedule")
		return
	}
	if g.StartDate.IsZero() {
		return // the bad start_date is reported already
	}
	tt, err := timetable.New(spec, g.Location, g.StartDate, g.EndDate)
	if err != nil {
		d.errAt(p.val, "%s: %v", what, err)
		return
	}
	g.Timetable = tt
}

// datasetSchedule decodes the value of schedule.datasets: a list of URIs,
// all of which must be updated, or {any: [...]} or {all: [...]}.
func (d *decoder) datasetSchedule(n *node) *DatasetSchedule {
	const what = "schedule.datasets"
	ds := &DatasetSchedule{}
	list, label := n, what
	switch n.kind {
	case seqNode:
	case mapNode:
		cf := d.fields(n, datasetCondition, what)
		anyP, hasAny := cf["any"]
		allP, hasAll := cf["all"]
		switch {
		case hasAny && hasAll:
			later := allP
			if allP.key.line < anyP.key.line || allP.key.line == anyP.key.line && allP.key.col < anyP.key.col {
				later = anyP
			}
			d.errAt(later.key, "%s: give any or all, not both", what)
			return nil
		case hasAny:
			ds.Any, list, label = true, anyP.val, what+".any"
		case hasAll:
			list, label = allP.val, what+".all"
		default:
			if len(cf) == len(n.pairs) { // unknown keys are reported already
				d.errAt(n, "%s needs any: [URI, …] (any one of them updated triggers a run) or all: [URI, …]", what)
			}
			return nil
		}
	default:
		d.errAt(n, "%s must be a list of dataset URIs, such as [s3://bucket/key], or {any: [URI, …]}, got %s", what, n.describe())
		return nil
	}
	if list.kind == seqNode && len(list.items) == 0 {
		d.errAt(list, "%s must list at least one dataset URI", label)
		return nil
	}
	ds.URIs = d.datasetURIs(list, label)
	if len(ds.URIs) == 0 {
		return nil
	}
	return ds
}

// datasetURIs decodes a list of dataset URIs, named what in messages,
// keeping those that are valid and not listed before.
func (d *decoder) datasetURIs(n *node, what string) []string {
	if n.kind != seqNode {
		d.errAt(n, "%s must be a list of dataset URIs, such as [s3://bucket/key], got %s", what, n.describe())
		return nil
	}
	out := make([]string, 0, len(n.items))
	seen := make(map[string]bool, len(n.items))
	for i, it := range n.items {
		s, ok := it.str()
		if !ok {
			d.errAt(it, "%s[%d] must be a dataset URI, such as s3://bucket/key, got %s", what, i, it.describe())
			continue
		}
		if err := CheckDatasetURI(s); err != nil {
			d.errAt(it, "%s[%d]: %v", what, i, err)
			continue
		}
		if seen[s] {
			d.errAt(it, "%s: %q is listed twice", what, s)
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// selfTriggering warns of a DAG scheduled on a dataset that one of its own
// tasks updates: each of its runs would start the next, without end.
func (d *decoder) selfTriggering(g *DAG, f map[string]pair) {
	if g.Datasets == nil {
		return
	}
	for _, t := range g.Tasks {
		for _, uri := range t.Outlets {
			if slices.Contains(g.Datasets.URIs, uri) {
				d.warnAt(f["schedule"].val, "task %s updates %s, which this DAG is scheduled on: each of its runs will start the next, without end", t.ID, uri)
				return
			}
		}
	}
}

// maxDatasetURI bounds a dataset URI's length.
const maxDatasetURI = 1024

// CheckDatasetURI checks a dataset URI, as DAG files and external
// producers give it: not empty, at most 1,024 bytes, without whitespace
// or control characters,
// with a scheme.
func CheckDatasetURI(s string) error {
	if s == "" {
		return errors.New("a dataset URI must not be empty")
	}
	if len(s) > maxDatasetURI {
		return fmt.Errorf("a dataset URI is at most %d bytes, this one has %d", maxDatasetURI, len(s))
	}
	u, err := url.Parse(s)
	if err == nil && u.Scheme == "" {
		return fmt.Errorf("%q is not a dataset URI: it needs a scheme, such as warehouse://sales/daily or s3://bucket/key", s)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%q is not a dataset URI: it must not hold whitespace (write a space as %%20)", s)
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a dataset URI: %v", s, err)
	}
	return nil
}

// isCronSpec reports whether n is a string that schedule.cron would take.
func isCronSpec(n *node) bool {
	s, ok := n.val.(string)
	return ok && n.kind == scalarNode && timetable.ValidateSpec(s) == nil
}
