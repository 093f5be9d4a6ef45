package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
)

func TestParseEventSubject(t *testing.T) {
	subj := wire.EventSubject("w-1", wire.EventFinished, "etl.daily")
	if subj != "kiln.event.w-1.finished.etl.daily" {
		t.Fatalf("EventSubject = %q", subj)
	}
	worker, kind, ok := wire.ParseEventSubject(subj)
	if !ok || worker != "w-1" || kind != wire.EventFinished {
		t.Errorf("ParseEventSubject(%q) = %q, %q, %v; want w-1, finished, true", subj, worker, kind, ok)
	}
	for _, bad := range []string{
		"", "kiln.event", "kiln.event.w", "kiln.event.w.finished", "kiln.task.w.finished.d",
		"kiln.event..finished.d", "kiln.event.w..d", "_INBOX.kiln.event.w.finished.d",
	} {
		if w, k, ok := wire.ParseEventSubject(bad); ok {
			t.Errorf("ParseEventSubject(%q) = %q, %q, true; want not ok", bad, w, k)
		}
	}
}

func TestWorkerNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"w1", true}, {"gpu-host_2", true}, {"", false}, {"host.example.com", false},
		{"*", false}, {">", false}, {"a b", false}, {strings.Repeat("w", 65), false},
	} {
		if err := wire.CheckWorker(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckWorker(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	for in, want := range map[string]string{
		"host.example.com-42":   "host-example-com-42",
		"":                      "worker",
		"ok_name-1":             "ok_name-1",
		strings.Repeat("h", 70): strings.Repeat("h", 64),
	} {
		got := wire.WorkerNameFrom(in)
		if got != want {
			t.Errorf("WorkerNameFrom(%q) = %q, want %q", in, got, want)
		}
		if err := wire.CheckWorker(got); err != nil {
			t.Errorf("WorkerNameFrom(%q) = %q: %v", in, got, err)
		}
	}
}

// TestWorkerLostAfter: a worker is lost after three of its intervals; one
// that does not say its interval writes every 30 s, as workers did before.
func TestWorkerLostAfter(t *testing.T) {
	for _, tc := range []struct {
		interval, want time.Duration
	}{
		{wire.WorkerInfoInterval, wire.WorkerLostAfter},
		{2 * time.Second, 6 * time.Second},
		{0, 90 * time.Second},
	} {
		wi := wire.WorkerInfo{Interval: tc.interval}
		if got := wi.LostAfter(); got != tc.want {
			t.Errorf("LostAfter with interval %v = %v, want %v", tc.interval, got, tc.want)
		}
	}
}
