package scheduler

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/store"
)

// Data-aware scheduling (docs/dag-format.md#datasets). A successful try
// of a task with outlets records an event for each of its datasets; an
// external producer posts one through EmitDatasetEvent. Each event is
// queued for every DAG scheduled on its dataset, in the loop's state and
// in the store, in the same commit. A DAG whose condition holds (all its
// datasets, or any, with an event queued) and that is not paused gets a
// run, dataset__TIME, carrying the queued events, which are then
// consumed. A paused DAG keeps its queue until it is unpaused.

// MaxEventExtra bounds an external event's extra, encoded: as large as a
// task's outputs may be (worker.MaxOutputBytes).
const MaxEventExtra = 64 << 10

// maxQueuedEvents bounds the events kept queued for one DAG and dataset;
// beyond it the oldest are dropped: the run that consumes them still
// starts, and sees the latest.
const maxQueuedEvents = 1000

// taskOutlets records a dataset event for each outlet of the task of a
// task instance that just succeeded, with the try's outputs as extra.
func (s *Scheduler) taskOutlets(ti *store.TaskInstance, now time.Time) {
	ar := s.active[runKey{ti.DAGID, ti.RunID}]
	if ar == nil {
		return
	}
	t := ar.dag.Task(ti.TaskID)
	if t == nil || len(t.Outlets) == 0 {
		return
	}
	for _, uri := range t.Outlets {
		s.datasetEvent(&store.DatasetEvent{
			URI: uri, Time: now.UTC(),
			SourceDAGID: ti.DAGID, SourceRunID: ti.RunID, SourceTaskID: ti.TaskID, SourceTry: ti.TryNumber,
			Extra: ti.Outputs,
		}, now)
	}
}

// datasetEvent numbers and records an event, queues it for every DAG
// scheduled on its dataset, and gives those DAGs their runs.
func (s *Scheduler) datasetEvent(e *store.DatasetEvent, now time.Time) {
	s.lastDatasetEvent++
	e.ID = s.lastDatasetEvent
	s.t.datasetEvents = append(s.t.datasetEvents, e)
	for _, d := range s.dags {
		if d.Datasets == nil || !slices.Contains(d.Datasets.URIs, e.URI) {
			continue
		}
		q := s.datasetQueue(d.ID)
		events := append(q[e.URI], *e)
		if len(events) > maxQueuedEvents {
			events = events[len(events)-maxQueuedEvents:]
		}
		q[e.URI] = events
		s.t.datasetQueues[queueKey{d.ID, e.URI}] = true
		s.triggerOnDatasets(d, now)
	}
}

// queueKey names a DAG's queue of one dataset's events.
type queueKey struct{ dagID, uri string }

// datasetQueue returns the queue of a DAG, by dataset URI, made if need be.
func (s *Scheduler) datasetQueue(dagID string) map[string][]store.DatasetEvent {
	q := s.datasetQueues[dagID]
	if q == nil {
		q = map[string][]store.DatasetEvent{}
		s.datasetQueues[dagID] = q
	}
	return q
}

// triggerOnDatasets gives a DAG scheduled on datasets a run when its
// condition holds and it is not paused, and consumes the events it ran
// for.
func (s *Scheduler) triggerOnDatasets(d *dag.DAG, now time.Time) {
	if d.Datasets == nil || s.paused(d.ID) {
		return
	}
	q := s.datasetQueues[d.ID]
	if len(waitingOn(d, q)) > 0 {
		return
	}
	var events []store.DatasetEvent
	for _, uri := range d.Datasets.URIs {
		events = append(events, q[uri]...)
		if len(q[uri]) > 0 {
			s.t.datasetQueues[queueKey{d.ID, uri}] = true
		}
		delete(q, uri)
	}
	if len(events) == 0 {
		return
	}
	slices.SortFunc(events, func(a, b store.DatasetEvent) int { return cmp.Compare(a.ID, b.ID) })
	params, err := d.ResolveParams(nil)
	if err != nil {
		// A required param without a default cannot come from an event.
		s.log.Warn("a DAG scheduled on datasets cannot start: its params need values", "dag", d.ID, "err", err)
		return
	}
	ld := now.UTC().Truncate(time.Microsecond)
	for {
		exists, err := s.hasRunAt(d.ID, ld)
		if err != nil {
			s.log.Warn("a dataset-triggered run is put off: reading the store", "dag", d.ID, "err", err)
			return
		}
		if !exists {
			break
		}
		ld = ld.Add(time.Microsecond)
	}
	iv := timetable.Interval{Start: events[0].Time.UTC(), End: events[len(events)-1].Time.UTC()}
	ar := s.createRun(d, store.RunTypeDataset, ld, iv, params, now)
	ar.run.TriggeringEvents = events
}

// waitingOn returns the datasets of a DAG scheduled on them that hold it
// back: with all, those without an event queued; with any, all of them
// when none has one.
func waitingOn(d *dag.DAG, q map[string][]store.DatasetEvent) []string {
	var waiting []string
	for _, uri := range d.Datasets.URIs {
		if len(q[uri]) == 0 {
			waiting = append(waiting, uri)
		}
	}
	if d.Datasets.Any && len(waiting) < len(d.Datasets.URIs) {
		return nil
	}
	return waiting
}

// paused reports whether a DAG is paused.
func (s *Scheduler) paused(dagID string) bool {
	st := s.states[dagID]
	return st != nil && st.Paused
}

// DatasetEventRequest is an external producer's event.
type DatasetEventRequest struct {
	URI   string
	Extra map[string]any
	// By names who posted it, for the record.
	By string
}

// EmitDatasetEvent records an event of an external producer, as a task's
// outlet would, and returns it once it is stored, with the runs it
// triggered.
func (s *Scheduler) EmitDatasetEvent(ctx context.Context, req DatasetEventRequest) (*store.DatasetEvent, error) {
	if err := dag.CheckDatasetURI(req.URI); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// Events are copied into the queues and runs they trigger: extra is
	// held to what a task's outputs may be.
	if b, err := json.Marshal(req.Extra); err != nil || len(b) > MaxEventExtra {
		return nil, fmt.Errorf("%w: extra: want a JSON object of at most %d bytes", ErrInvalid, MaxEventExtra)
	}
	v, err := s.do(ctx, func(now time.Time) (any, error) {
		e := &store.DatasetEvent{URI: req.URI, Time: now.UTC(), By: req.By, Extra: req.Extra}
		s.datasetEvent(e, now)
		cp := *e
		return &cp, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.DatasetEvent), nil
}

// DatasetInfo is what is known of one dataset: the tasks that update it,
// the DAGs scheduled on it and what holds them back, and its events.
type DatasetInfo struct {
	URI       string              `json:"uri"`
	Producers []DatasetProducer   `json:"producers"`
	Consumers []DatasetConsumer   `json:"consumers"`
	Events    int                 `json:"events"`
	LastEvent *store.DatasetEvent `json:"last_event"`
}

// DatasetProducer is a task with the dataset among its outlets.
type DatasetProducer struct {
	DAGID  string `json:"dag_id"`
	TaskID string `json:"task_id"`
}

// DatasetConsumer is a DAG scheduled on the dataset: Any when any of its
// datasets triggers it; QueuedEvents of this dataset wait for its next
// run; WaitingOn are the datasets, this one or others, without an event
// since its last dataset-triggered run, that hold that run back.
type DatasetConsumer struct {
	DAGID        string   `json:"dag_id"`
	Any          bool     `json:"any"`
	Paused       bool     `json:"paused"`
	QueuedEvents int      `json:"queued_events"`
	WaitingOn    []string `json:"waiting_on"`
}

// Datasets returns every dataset a loaded DAG names or an event updated,
// by URI.
func (s *Scheduler) Datasets(ctx context.Context) ([]DatasetInfo, error) {
	v, err := s.do(ctx, func(time.Time) (any, error) {
		byURI := map[string]*DatasetInfo{}
		info := func(uri string) *DatasetInfo {
			if byURI[uri] == nil {
				byURI[uri] = &DatasetInfo{URI: uri, Producers: []DatasetProducer{}, Consumers: []DatasetConsumer{}}
			}
			return byURI[uri]
		}
		for _, id := range slices.Sorted(maps.Keys(s.dags)) {
			d := s.dags[id]
			for _, t := range d.Tasks {
				for _, uri := range t.Outlets {
					i := info(uri)
					i.Producers = append(i.Producers, DatasetProducer{DAGID: d.ID, TaskID: t.ID})
				}
			}
			if d.Datasets == nil {
				continue
			}
			q := s.datasetQueues[d.ID]
			waiting := waitingOn(d, q)
			if waiting == nil {
				waiting = []string{}
			}
			for _, uri := range d.Datasets.URIs {
				i := info(uri)
				i.Consumers = append(i.Consumers, DatasetConsumer{DAGID: d.ID, Any: d.Datasets.Any, Paused: s.paused(d.ID), QueuedEvents: len(q[uri]), WaitingOn: waiting})
			}
		}
		return byURI, nil
	})
	if err != nil {
		return nil, err
	}
	byURI := v.(map[string]*DatasetInfo)
	stored, err := s.cfg.Store.Datasets()
	if err != nil {
		return nil, err
	}
	for _, ds := range stored {
		i := byURI[ds.URI]
		if i == nil {
			i = &DatasetInfo{URI: ds.URI, Producers: []DatasetProducer{}, Consumers: []DatasetConsumer{}}
			byURI[ds.URI] = i
		}
		i.Events, i.LastEvent = ds.Events, ds.Last
	}
	out := make([]DatasetInfo, 0, len(byURI))
	for _, uri := range slices.Sorted(maps.Keys(byURI)) {
		out = append(out, *byURI[uri])
	}
	return out, nil
}
