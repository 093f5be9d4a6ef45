package chaos

import (
	"fmt"
	"strconv"
	"time"
)

// Fault is a kind of fault the suite injects.
type Fault string

// The faults, one at a time, each repaired before the next.
const (
	// KillLeader SIGKILLs the leading server, and starts it again a few
	// seconds later.
	KillLeader Fault = "kill-leader"
	// PartitionLeader disconnects the leading server from the network,
	// and connects it again about 10 s later.
	PartitionLeader Fault = "partition-leader"
	// StopNATS stops a NATS server, and starts it again.
	StopNATS Fault = "stop-nats"
	// KillWorker SIGKILLs a worker, and starts it again.
	KillWorker Fault = "kill-worker"
	// PartitionWorker disconnects a worker from the network, and
	// connects it again about 10 s later.
	PartitionWorker Fault = "partition-worker"
)

// hitsOneWorker reports whether the fault hits only the tries of the
// worker it targets.
func (f Fault) hitsOneWorker() bool { return f == KillWorker || f == PartitionWorker }

// Injection is one fault injected: its kind, the node it hit (s1, n2, w3)
// and when, from the fault to its repair.
type Injection struct {
	Fault      Fault
	Target     string
	Start, End time.Time
}

func (in Injection) String() string {
	return fmt.Sprintf("%s %s %s–%s", in.Fault, in.Target, in.Start.Format("15:04:05.000"), in.End.Format("15:04:05.000"))
}

// Try is what the checks need of one try of a task instance, as
// GET …/tasks/{task}/tries answers it (docs/api.md#tries).
type Try struct {
	Number    int
	State     string
	Worker    string
	QueuedAt  *time.Time
	StartDate *time.Time
	EndDate   *time.Time
}

// Explains reports whether the injection explains why the try did not
// succeed. The rule is deliberately simple:
//
//   - the try's span, from its start (else its queueing) to its end (else
//     open), overlaps the injection's span stretched by aftermath: the
//     time the servers take to notice the fault after its repair (a
//     worker's missed heartbeats, a lapsed leader lease), and
//   - a fault of one worker (killed or partitioned) explains only the
//     tries of that worker; a fault of the leader or of a NATS server
//     explains any try that ran then, since either can cut the try's
//     result off from the scheduler that waits for it.
//
// A try with no time at all is taken to span everything: the API knows
// nothing that could place it.
func (in Injection) Explains(tr Try, aftermath time.Duration) bool {
	if in.Fault.hitsOneWorker() && tr.Worker != in.Target {
		return false
	}
	from := tr.StartDate
	if from == nil {
		from = tr.QueuedAt
	}
	if from != nil && from.After(in.End.Add(aftermath)) {
		return false
	}
	if tr.EndDate != nil && tr.EndDate.Before(in.Start) {
		return false
	}
	return true
}

// CheckTries checks the tries of one task instance that should have
// succeeded, of at most maxTries tries, against the injections: try numbers
// 1 to n each once and in order; exactly one successful try, the last;
// and every try before it explained by an injection (Explains). It returns
// what is wrong, nothing when all is well.
func CheckTries(tries []Try, maxTries int, injections []Injection, aftermath time.Duration) []error {
	var errs []error
	if len(tries) == 0 {
		return []error{fmt.Errorf("no try recorded")}
	}
	if maxTries > 0 && len(tries) > maxTries {
		errs = append(errs, fmt.Errorf("%d tries recorded, more than max_tries %d", len(tries), maxTries))
	}
	successes := 0
	for i, tr := range tries {
		if tr.Number != i+1 {
			errs = append(errs, fmt.Errorf("try %d recorded where try %d should be: a try recorded twice or missing", tr.Number, i+1))
		}
		if tr.State == "success" {
			successes++
		}
	}
	if successes > 1 {
		errs = append(errs, fmt.Errorf("%d successful tries: a result applied more than once", successes))
	}
	if last := tries[len(tries)-1]; last.State != "success" {
		errs = append(errs, fmt.Errorf("the last try, %d, is %q, not success", last.Number, last.State))
	}
	for _, tr := range tries[:len(tries)-1] {
		if tr.State == "success" {
			errs = append(errs, fmt.Errorf("try %d succeeded, yet try %d came after it", tr.Number, tries[len(tries)-1].Number))
			continue
		}
		if !explained(tr, injections, aftermath) {
			errs = append(errs, fmt.Errorf("try %d (%s on worker %q, %s) is explained by no injection", tr.Number, tr.State, tr.Worker, span(tr)))
		}
	}
	return errs
}

func explained(tr Try, injections []Injection, aftermath time.Duration) bool {
	for _, in := range injections {
		if in.Explains(tr, aftermath) {
			return true
		}
	}
	return false
}

func span(tr Try) string {
	at := func(t *time.Time) string {
		if t == nil {
			return "?"
		}
		return t.Format("15:04:05.000")
	}
	return fmt.Sprintf("queued %s, ran %s–%s", at(tr.QueuedAt), at(tr.StartDate), at(tr.EndDate))
}

// LogRecord is the part of a message of the replicated log, the stream
// KILN_LOG, that the checks read: its stream sequence and the headers
// Kiln-Term and Kiln-Leader, as they came ("" when absent).
type LogRecord struct {
	Seq    uint64
	Term   string
	Leader string
}

// Term is a run of consecutive records of the log with one term and one
// leader: a leader's term, when the log is right.
type Term struct {
	Term     uint64
	Leader   string
	FirstSeq uint64
	LastSeq  uint64
	Records  int
}

// maxLogErrors bounds the errors CheckLog returns: past a few, more of the
// same say nothing new.
const maxLogErrors = 20

// CheckLog checks the log's records in sequence order for two leaders at
// once: every record names its term and leader, the terms never decrease
// along the sequence, and one term has one leader. It returns the log's
// runs of records by term and leader, in log order, and what is wrong.
func CheckLog(records []LogRecord) ([]Term, []error) {
	var (
		terms   []Term
		errs    []error
		leaders = map[uint64]string{} // term → its leader
		prev    *LogRecord
		prevT   uint64
	)
	fail := func(err error) {
		if len(errs) < maxLogErrors {
			errs = append(errs, err)
		}
	}
	for i := range records {
		r := &records[i]
		if prev != nil && r.Seq <= prev.Seq {
			fail(fmt.Errorf("seq %d read after seq %d: the log read out of order", r.Seq, prev.Seq))
		}
		term, err := strconv.ParseUint(r.Term, 10, 64)
		if err != nil {
			fail(fmt.Errorf("seq %d: Kiln-Term %q is not a term: %v", r.Seq, r.Term, err))
			continue
		}
		if r.Leader == "" {
			fail(fmt.Errorf("seq %d (term %d) has no Kiln-Leader", r.Seq, term))
			continue
		}
		if prev != nil && term < prevT {
			fail(fmt.Errorf("seq %d: term %d (%s) after term %d (%s, seq %d): the terms went back", r.Seq, term, r.Leader, prevT, prev.Leader, prev.Seq))
		}
		if l, ok := leaders[term]; ok && l != r.Leader {
			fail(fmt.Errorf("seq %d: term %d has two leaders, %s and %s", r.Seq, term, l, r.Leader))
		}
		if _, ok := leaders[term]; !ok {
			leaders[term] = r.Leader
		}
		if n := len(terms); n > 0 && terms[n-1].Term == term && terms[n-1].Leader == r.Leader {
			terms[n-1].LastSeq = r.Seq
			terms[n-1].Records++
		} else {
			terms = append(terms, Term{Term: term, Leader: r.Leader, FirstSeq: r.Seq, LastSeq: r.Seq, Records: 1})
		}
		prev, prevT = r, term
	}
	return terms, errs
}

// The workload: testdata/dags/chaos_dag.yaml, whose tasks each have
// workloadRetries retries.
const (
	workloadDAG     = "chaos_dag"
	workloadRetries = 3
)
