package dag

// TriggerRule decides when a task may run from the states of its upstream
// tasks; the names and meanings are Airflow's (docs/dag-format.md#trigger-rules).
type TriggerRule string

// The trigger rules.
const (
	AllSuccess              TriggerRule = "all_success"
	AllFailed               TriggerRule = "all_failed"
	AllDone                 TriggerRule = "all_done"
	AllDoneMinOneSuccess    TriggerRule = "all_done_min_one_success"
	AllSkipped              TriggerRule = "all_skipped"
	OneSuccess              TriggerRule = "one_success"
	OneFailed               TriggerRule = "one_failed"
	OneDone                 TriggerRule = "one_done"
	NoneFailed              TriggerRule = "none_failed"
	NoneFailedMinOneSuccess TriggerRule = "none_failed_min_one_success"
	NoneSkipped             TriggerRule = "none_skipped"
	Always                  TriggerRule = "always"
)

// TriggerRules lists every valid rule, in the order the docs give them.
var TriggerRules = []TriggerRule{
	AllSuccess, AllFailed, AllDone, AllDoneMinOneSuccess, AllSkipped,
	OneSuccess, OneFailed, OneDone, NoneFailed, NoneFailedMinOneSuccess,
	NoneSkipped, Always,
}

// Valid reports whether r is one of TriggerRules.
func (r TriggerRule) Valid() bool {
	for _, v := range TriggerRules {
		if r == v {
			return true
		}
	}
	return false
}
