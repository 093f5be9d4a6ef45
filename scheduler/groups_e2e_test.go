package scheduler_test

import (
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// TestE2EGroups runs a task that depends on a group of two tasks: it
// starts only once both ended, and the group's retries let one of them
// fail its first try (docs/dag-format.md#task-groups).
func TestE2EGroups(t *testing.T) {
	e := start(t, map[string]string{"grouped": `
defaults: {plugin: shell, retry_delay: 100ms}
groups:
  extract:
    defaults: {retries: 1}
    tasks: [extract_orders, extract_customers]
tasks:
  - id: extract_orders
    with: {command: 'sleep 0.2; if [ "$KILN_TRY_NUMBER" = 1 ]; then exit 1; fi'}
  - id: extract_customers
    with: {command: 'sleep 0.5'}
  - id: join
    depends_on: [extract]
    with: {command: 'true'}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("grouped", nil), 20*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s, want success; tasks %v", r.State, e.taskStates(r))
	}
	tis := map[string]*store.TaskInstance{}
	for _, id := range []string{"extract_orders", "extract_customers", "join"} {
		ti, err := e.st.GetTaskInstance("grouped", r.RunID, id)
		if err != nil || ti.StartDate == nil || ti.EndDate == nil {
			t.Fatalf("task instance %s = %+v (%v)", id, ti, err)
		}
		tis[id] = ti
	}
	if n := tis["extract_orders"].TryNumber; n != 2 {
		t.Errorf("extract_orders ran %d tries, want 2: its group's retries: 1", n)
	}
	if n := tis["extract_customers"].TryNumber; n != 1 {
		t.Errorf("extract_customers ran %d tries, want 1", n)
	}
	join := *tis["join"].StartDate
	for _, id := range []string{"extract_orders", "extract_customers"} {
		if end := *tis[id].EndDate; join.Before(end) {
			t.Errorf("join started at %v, before %s ended at %v", join, id, end)
		}
	}
}
