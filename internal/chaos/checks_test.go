package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// at is a time of day on a fixed date, seconds after 12:00:00.
func at(s float64) *time.Time {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	return &t
}

func TestExplains(t *testing.T) {
	const aftermath = 20 * time.Second
	killW1 := Injection{Fault: KillWorker, Target: "w1", Start: *at(100), End: *at(103)}
	killLeader := Injection{Fault: KillLeader, Target: "s1", Start: *at(100), End: *at(103)}
	for _, tc := range []struct {
		name string
		in   Injection
		try  Try
		want bool
	}{
		{"worker's try during the kill", killW1, Try{Worker: "w1", StartDate: at(99), EndDate: at(115)}, true},
		{"another worker's try", killW1, Try{Worker: "w2", StartDate: at(99), EndDate: at(115)}, false},
		{"ended before the kill", killW1, Try{Worker: "w1", StartDate: at(90), EndDate: at(99.9)}, false},
		{"started within the aftermath", killW1, Try{Worker: "w1", StartDate: at(122), EndDate: at(124)}, true},
		{"started after the aftermath", killW1, Try{Worker: "w1", StartDate: at(124), EndDate: at(125)}, false},
		{"never started, queued during it", killW1, Try{Worker: "w1", QueuedAt: at(101)}, true},
		{"still open, started before", killW1, Try{Worker: "w1", StartDate: at(50)}, true},
		{"no times at all", killW1, Try{Worker: "w1"}, true},
		{"leader fault, any worker", killLeader, Try{Worker: "w3", StartDate: at(101), EndDate: at(102)}, true},
		{"leader fault, no worker", killLeader, Try{StartDate: at(101), EndDate: at(102)}, true},
		{"leader fault, long after", killLeader, Try{Worker: "w3", StartDate: at(200), EndDate: at(201)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Explains(tc.try, aftermath); got != tc.want {
				t.Errorf("%v explains %s = %v, want %v", tc.in, span(tc.try), got, tc.want)
			}
		})
	}
}

func TestCheckTries(t *testing.T) {
	const aftermath = 20 * time.Second
	injections := []Injection{{Fault: PartitionWorker, Target: "w2", Start: *at(100), End: *at(110)}}
	ok := func(n int, w string, s, e float64) Try {
		return Try{Number: n, State: "success", Worker: w, StartDate: at(s), EndDate: at(e)}
	}
	failed := func(n int, w string, s, e float64) Try {
		return Try{Number: n, State: "failed", Worker: w, StartDate: at(s), EndDate: at(e)}
	}
	for _, tc := range []struct {
		name  string
		tries []Try
		want  []string // a part of each error, in order
	}{
		{"one try", []Try{ok(1, "w1", 10, 11)}, nil},
		{"retried after the partition", []Try{failed(1, "w2", 99, 120), ok(2, "w1", 121, 122)}, nil},
		{"no try", nil, []string{"no try recorded"}},
		{"unexplained retry", []Try{failed(1, "w1", 99, 101), ok(2, "w1", 102, 103)}, []string{"try 1 (failed on worker \"w1\""}},
		{"try number twice", []Try{failed(1, "w2", 99, 120), failed(1, "w2", 99, 120), ok(3, "w1", 121, 122)},
			[]string{"try 1 recorded where try 2 should be"}},
		{"two successes", []Try{ok(1, "w2", 99, 101), ok(2, "w1", 102, 103)},
			[]string{"2 successful tries", "try 1 succeeded, yet try 2 came after it"}},
		{"last try failed", []Try{failed(1, "w2", 99, 101)}, []string{"the last try, 1, is \"failed\""}},
		{"more than max", []Try{failed(1, "w2", 100, 101), failed(2, "w2", 101, 102), failed(3, "w2", 102, 103), failed(4, "w2", 103, 104), ok(5, "w2", 104, 105)},
			[]string{"5 tries recorded, more than max_tries 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckTries(tc.tries, 4, injections, aftermath)
			var got []string
			for i, err := range errs {
				if i < len(tc.want) && strings.Contains(err.Error(), tc.want[i]) {
					got = append(got, tc.want[i])
				} else {
					got = append(got, err.Error())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckLog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		records   []LogRecord
		wantTerms []Term
		wantErrs  []string
	}{
		{
			name:    "two leaders one after the other",
			records: []LogRecord{{1, "5", "s1"}, {2, "5", "s1"}, {3, "9", "s2"}, {4, "9", "s2"}, {5, "12", "s1"}},
			wantTerms: []Term{
				{Term: 5, Leader: "s1", FirstSeq: 1, LastSeq: 2, Records: 2},
				{Term: 9, Leader: "s2", FirstSeq: 3, LastSeq: 4, Records: 2},
				{Term: 12, Leader: "s1", FirstSeq: 5, LastSeq: 5, Records: 1},
			},
		},
		{
			name:    "a deposed leader writes after its successor",
			records: []LogRecord{{1, "5", "s1"}, {2, "9", "s2"}, {3, "5", "s1"}},
			wantTerms: []Term{
				{Term: 5, Leader: "s1", FirstSeq: 1, LastSeq: 1, Records: 1},
				{Term: 9, Leader: "s2", FirstSeq: 2, LastSeq: 2, Records: 1},
				{Term: 5, Leader: "s1", FirstSeq: 3, LastSeq: 3, Records: 1},
			},
			wantErrs: []string{"seq 3: term 5 (s1) after term 9 (s2, seq 2): the terms went back"},
		},
		{
			name:    "one term, two leaders",
			records: []LogRecord{{1, "5", "s1"}, {2, "5", "s2"}},
			wantTerms: []Term{
				{Term: 5, Leader: "s1", FirstSeq: 1, LastSeq: 1, Records: 1},
				{Term: 5, Leader: "s2", FirstSeq: 2, LastSeq: 2, Records: 1},
			},
			wantErrs: []string{"seq 2: term 5 has two leaders, s1 and s2"},
		},
		{
			name:      "headers missing",
			records:   []LogRecord{{1, "", "s1"}, {2, "x", "s1"}, {3, "7", ""}, {4, "7", "s2"}},
			wantTerms: []Term{{Term: 7, Leader: "s2", FirstSeq: 4, LastSeq: 4, Records: 1}},
			wantErrs: []string{
				`seq 1: Kiln-Term "" is not a term`,
				`seq 2: Kiln-Term "x" is not a term`,
				"seq 3 (term 7) has no Kiln-Leader",
			},
		},
		{name: "empty log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			terms, errs := CheckLog(tc.records)
			if diff := cmp.Diff(tc.wantTerms, terms); diff != "" {
				t.Errorf("terms (-want +got):\n%s", diff)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors = %v, want %d: %q", errs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tc.wantErrs[i]) {
					t.Errorf("error %d = %q, want it to say %q", i, err, tc.wantErrs[i])
				}
			}
		})
	}
}
