package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketBackfills holds backfills by id (migration 2).
var bucketBackfills = []byte("backfills")

// BackfillState is the state of a backfill.
type BackfillState string

// Backfill states.
const (
	BackfillRunning   BackfillState = "running"
	BackfillSuccess   BackfillState = "success"
	BackfillFailed    BackfillState = "failed"
	BackfillCancelled BackfillState = "cancelled"
)

// Finished reports whether the backfill has ended.
func (s BackfillState) Finished() bool { return s != BackfillRunning }

// Reprocess modes: which dates that already have a run are run again.
const (
	ReprocessNone      = "none"      // skip every date that has a run
	ReprocessFailed    = "failed"    // re-run dates whose run failed
	ReprocessCompleted = "completed" // re-run dates whose run ended either way
)

// Backfill date actions.
const (
	DateNew   = "new"   // a run is created for the date
	DateRerun = "rerun" // the date's existing run is cleared and run again
	DateSkip  = "skip"  // the date keeps its run as it is
)

// Backfill is a request to run a DAG over a range of logical dates,
// executed by the scheduler.
type Backfill struct {
	ID            string         `json:"id"`
	DAGID         string         `json:"dag_id"`
	From          time.Time      `json:"from"`
	To            time.Time      `json:"to"`
	Reprocess     string         `json:"reprocess"`
	Reverse       bool           `json:"reverse"`
	MaxActiveRuns int            `json:"max_active_runs"`
	Params        map[string]any `json:"params"`
	RequestedBy   string         `json:"requested_by,omitempty"`
	// NoCache runs the backfill's runs whatever the task cache holds
	// (docs/artifacts.md#the-task-cache).
	NoCache   bool          `json:"no_cache,omitempty"`
	State     BackfillState `json:"state"`
	CreatedAt time.Time     `json:"created_at"`
	EndDate   *time.Time    `json:"end_date"`
	// Dates are the logical dates in the order they are processed.
	Dates []BackfillDate `json:"dates"`
}

// BackfillDate is one logical date of a backfill and what became of it.
type BackfillDate struct {
	LogicalDate time.Time `json:"logical_date"`
	Action      string    `json:"action"` // new, rerun or skip
	Reason      string    `json:"reason,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	// Started is set once the date's run was created or cleared.
	Started bool `json:"started"`
	// State is the date's run state as last seen: empty until started.
	State RunState `json:"state,omitempty"`
}

// ReprocessAction decides what a backfill does with a date that already has
// run r: a run still queued or running is never doubled; otherwise the mode
// says whether it is re-run or skipped.
func ReprocessAction(r *Run, mode string) (action, reason string) {
	switch {
	case !r.State.Finished():
		return DateSkip, "a run is " + string(r.State)
	case mode == ReprocessCompleted,
		mode == ReprocessFailed && r.State == RunFailed:
		return DateRerun, "run " + string(r.State)
	}
	return DateSkip, "run exists (" + string(r.State) + ")"
}

// Counts tallies a backfill's dates.
type BackfillCounts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	// Queued counts the started dates whose run waits to start; Running
	// those whose run runs.
	Queued  int `json:"queued"`
	Running int `json:"running"`
	Success int `json:"success"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Counts tallies the dates by what became of them.
func (b *Backfill) Counts() BackfillCounts {
	c := BackfillCounts{Total: len(b.Dates)}
	for _, d := range b.Dates {
		switch {
		case d.Action == DateSkip:
			c.Skipped++
		case !d.Started:
			c.Pending++
		case d.State == RunSuccess:
			c.Success++
		case d.State == RunFailed:
			c.Failed++
		case d.State == RunQueued:
			c.Queued++
		default:
			c.Running++
		}
	}
	return c
}

// PutBackfill creates or updates a backfill.
func (b *Batch) PutBackfill(bf *Backfill) {
	if err := checkID("backfill id", bf.ID); err != nil {
		b.fail(fmt.Errorf("putting backfill %s: %w", bf.ID, err))
		return
	}
	c := Change{Kind: ChangeBackfill, DAGID: bf.DAGID, BackfillID: bf.ID, State: string(bf.State)}
	b.putJSON(c, bucketBackfills, backfillKey(bf.ID), bf, "backfill "+bf.ID)
}

// backfillKey orders backfills by their numeric id, newest last.
func backfillKey(id string) []byte {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "bf-"), 10, 64)
	if err != nil {
		return []byte(id)
	}
	return u64(n)
}

// GetBackfill returns one backfill.
func (s *Store) GetBackfill(id string) (*Backfill, error) {
	bf := new(Backfill)
	if err := s.get(bucketBackfills, backfillKey(id), bf); err != nil {
		return nil, fmt.Errorf("getting backfill %s: %w", id, err)
	}
	return bf, nil
}

// Backfills returns the backfills of a DAG ("" for all), newest first.
func (s *Store) Backfills(dagID string) ([]*Backfill, error) {
	var out []*Backfill
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBackfills).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			bf := new(Backfill)
			if err := json.Unmarshal(v, bf); err != nil {
				return fmt.Errorf("decoding backfill %x: %w", k, err)
			}
			if dagID == "" || bf.DAGID == dagID {
				out = append(out, bf)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing backfills: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}
