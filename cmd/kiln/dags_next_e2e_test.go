package main_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// interval is one element of `kiln dags next --json` (docs/cli.md#kiln-dags-next).
type interval struct {
	LogicalDate       string `json:"logical_date"`
	DataIntervalStart string `json:"data_interval_start"`
	DataIntervalEnd   string `json:"data_interval_end"`
}

// iv builds the interval [start, end), whose logical date is start.
func iv(start, end string) interval {
	return interval{LogicalDate: start, DataIntervalStart: start, DataIntervalEnd: end}
}

// decodeIntervals decodes stdout, which must hold one JSON array of objects
// with exactly the keys logical_date, data_interval_start and
// data_interval_end, and nothing else.
func decodeIntervals(t *testing.T, stdout string) []interval {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var got []interval
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not a JSON array of intervals: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON value: %q", stdout)
	}
	if got == nil {
		t.Fatalf("stdout = %q, want a JSON array (not null)", stdout)
	}
	// Every object carries all three keys.
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for i, obj := range raw {
		if len(obj) != 3 {
			t.Errorf("element %d has keys %v, want logical_date, data_interval_start, data_interval_end", i, obj)
		}
	}
	return got
}

// The fixture testdata/next/nightly.yaml runs "30 2 * * *" in
// America/New_York from 2026-03-01. Its intervals, worked out by hand from
// docs/dag-format.md#daylight-saving-time and checked with `TZ=America/New_York date -d @EPOCH`:
//
//	tick                              UTC                   epoch
//	2026-03-01T02:30:00-05:00 (EST)   2026-03-01T07:30:00Z  1772350200
//	2026-03-02T02:30:00-05:00 (EST)   2026-03-02T07:30:00Z  1772436600
//	2026-03-03T02:30:00-05:00 (EST)   2026-03-03T07:30:00Z  1772523000
//	2026-03-07T02:30:00-05:00 (EST)   2026-03-07T07:30:00Z  1772868600
//	2026-03-08T03:00:00-04:00 (EDT)   2026-03-08T07:00:00Z  1772953200
//	    spring forward: 02:00 EST jumps to 03:00 EDT, 02:30 does not
//	    exist, so the tick is the first instant after the gap; the
//	    interval before it lasts 23h30m, the one after it 23h30m too.
//	2026-03-09T02:30:00-04:00 (EDT)   2026-03-09T06:30:00Z  1773037800
//	2026-03-10T02:30:00-04:00 (EDT)   2026-03-10T06:30:00Z  1773124200
//	2026-10-31T02:30:00-04:00 (EDT)   2026-10-31T06:30:00Z  1793428200
//	2026-11-01T02:30:00-05:00 (EST)   2026-11-01T07:30:00Z  1793518200
//	    fall back at 02:00 EDT → 01:00 EST: 02:30 happens once, in EST;
//	    the interval before it lasts 25h.
//	2026-11-02T02:30:00-05:00 (EST)   2026-11-02T07:30:00Z  1793604600
//
// testdata/validate/mixed/good.yaml runs "0 6 * * *" in Europe/Berlin, which
// springs forward on 2026-03-29 (02:00 CET → 03:00 CEST):
//
//	2026-03-28T06:00:00+01:00  2026-03-28T05:00:00Z
//	2026-03-29T06:00:00+02:00  2026-03-29T04:00:00Z  (a 23h interval before it)
//	2026-03-30T06:00:00+02:00  2026-03-30T04:00:00Z
func TestDagsNextJSON(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []interval
	}{
		{
			name: "spring forward in New York, DAG file",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-03-07", "--n", "3"},
			want: []interval{
				iv("2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00"),
				iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
				iv("2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"),
			},
		},
		{
			name: "DAG id looked up in --dags",
			args: []string{"nightly", "--dags", "testdata/next", "--from", "2026-03-07", "--n", "3"},
			want: []interval{
				iv("2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00"),
				iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
				iv("2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"),
			},
		},
		{
			name: "flags before the argument",
			args: []string{"--n", "1", "--from", "2026-03-07", "testdata/next/nightly.yaml"},
			want: []interval{iv("2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00")},
		},
		{
			name: "--from before start_date starts at the first interval",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-01-15", "--n", "2"},
			want: []interval{
				iv("2026-03-01T02:30:00-05:00", "2026-03-02T02:30:00-05:00"),
				iv("2026-03-02T02:30:00-05:00", "2026-03-03T02:30:00-05:00"),
			},
		},
		{
			name: "--from exactly on a tick (RFC 3339, UTC) includes it",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-03-08T07:00:00Z", "--n", "1"},
			want: []interval{iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00")},
		},
		{
			name: "--from one second after a tick skips it",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-03-08T03:00:01-04:00", "--n", "1"},
			want: []interval{iv("2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00")},
		},
		{
			// 03:00 in New York is past that day's 02:30 tick; read in UTC
			// (or the machine's zone) it would be the evening before.
			name: "--from without an offset is read in the DAG's timezone",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-03-07T03:00", "--n", "1"},
			want: []interval{iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00")},
		},
		{
			name: "fall back in New York",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-10-31", "--n", "2"},
			want: []interval{
				iv("2026-10-31T02:30:00-04:00", "2026-11-01T02:30:00-05:00"),
				iv("2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"),
			},
		},
		{
			name: "end_date (inclusive) limits the output to fewer than --n",
			args: []string{"ending", "--dags", "testdata/next", "--from", "2026-03-07", "--n", "5"},
			want: []interval{
				iv("2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00"),
				iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
				iv("2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"),
			},
		},
		{
			name: "--from after end_date: an empty array",
			args: []string{"testdata/next/ending.yaml", "--from", "2026-04-01"},
			want: []interval{},
		},
		{
			name: "DAG found in a folder whose other files are broken",
			args: []string{"good", "--dags", "testdata/validate/mixed", "--from", "2026-03-28", "--n", "2"},
			want: []interval{
				iv("2026-03-28T06:00:00+01:00", "2026-03-29T06:00:00+02:00"),
				iv("2026-03-29T06:00:00+02:00", "2026-03-30T06:00:00+02:00"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"dags", "next", "--json"}, tt.args...)
			stdout, stderr, code := runKiln(t, args...)
			if code != 0 {
				t.Fatalf("exit code = %d, want 0 (stderr %q)", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want empty", stderr)
			}
			got := decodeIntervals(t, stdout)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("intervals differ (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDagsNextText checks the table output: a header line, then one row per
// interval with its logical date, start and end. Column padding is free.
func TestDagsNextText(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantRows [][]string
	}{
		{
			name: "three intervals over spring forward",
			args: []string{"testdata/next/nightly.yaml", "--from", "2026-03-07", "--n", "3"},
			wantRows: [][]string{
				{"2026-03-08T07:00:00Z", "2026-03-07T07:30:00Z", "[2026-03-07T07:30:00Z,", "2026-03-08T07:00:00Z)", "2026-03-07", "02:30", "to", "2026-03-08", "03:00"},
				{"2026-03-09T06:30:00Z", "2026-03-08T07:00:00Z", "[2026-03-08T07:00:00Z,", "2026-03-09T06:30:00Z)", "2026-03-08", "03:00", "to", "2026-03-09", "02:30"},
				{"2026-03-10T06:30:00Z", "2026-03-09T06:30:00Z", "[2026-03-09T06:30:00Z,", "2026-03-10T06:30:00Z)", "2026-03-09", "02:30", "to", "2026-03-10", "02:30"},
			},
		},
		{
			name: "end_date leaves fewer rows than --n",
			args: []string{"ending", "--dags", "testdata/next", "--from", "2026-03-08", "--n", "4"},
			wantRows: [][]string{
				{"2026-03-09T06:30:00Z", "2026-03-08T07:00:00Z", "[2026-03-08T07:00:00Z,", "2026-03-09T06:30:00Z)", "2026-03-08", "03:00", "to", "2026-03-09", "02:30"},
				{"2026-03-10T06:30:00Z", "2026-03-09T06:30:00Z", "[2026-03-09T06:30:00Z,", "2026-03-10T06:30:00Z)", "2026-03-09", "02:30", "to", "2026-03-10", "02:30"},
			},
		},
		{
			name:     "nothing after end_date: the header alone",
			args:     []string{"ending", "--dags", "testdata/next", "--from", "2026-03-10"},
			wantRows: [][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKiln(t, append([]string{"dags", "next"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit code = %d, want 0 (stderr %q)", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want empty", stderr)
			}
			if !strings.HasSuffix(stdout, "\n") {
				t.Errorf("stdout = %q, want it to end with a newline", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if got, want := strings.Fields(lines[0]), []string{"RUN", "CREATED", "AT", "LOGICAL", "DATE", "DATA", "INTERVAL", "IN", "America/New_York"}; !cmp.Equal(got, want) {
				t.Errorf("header = %q, want the words %q", lines[0], want)
			}
			rows := [][]string{}
			for _, line := range lines[1:] {
				rows = append(rows, strings.Fields(line))
			}
			if diff := cmp.Diff(tt.wantRows, rows); diff != "" {
				t.Errorf("rows differ (-want +got):\n%s\nstdout:\n%s", diff, stdout)
			}
		})
	}
}

// TestDagsNextDefaultFrom checks that without --from the intervals start
// with the next run the scheduler creates: the interval that ends next.
func TestDagsNextDefaultFrom(t *testing.T) {
	before := time.Now()
	stdout, stderr, code := runKiln(t, "dags", "next", "testdata/next/nightly.yaml", "--n", "2", "--json")
	after := time.Now()
	if code != 0 {
		t.Fatalf("exit code = %d, want 0 (stderr %q)", code, stderr)
	}
	got := decodeIntervals(t, stdout)
	if len(got) != 2 {
		t.Fatalf("got %d intervals, want 2: %s", len(got), stdout)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no zoneinfo for America/New_York on this machine: %v", err)
	}
	first, err := time.Parse(time.RFC3339, got[0].LogicalDate)
	if err != nil {
		t.Fatal(err)
	}
	end, err := time.Parse(time.RFC3339, got[0].DataIntervalEnd)
	if err != nil {
		t.Fatal(err)
	}
	if first.After(after) || !end.After(before) {
		t.Errorf("first interval [%s, %s), want the one now (%s) is in", got[0].DataIntervalStart, got[0].DataIntervalEnd, before.Format(time.RFC3339))
	}
	if want := first.In(ny).Format(time.RFC3339); got[0].LogicalDate != want {
		t.Errorf("logical date %s, want it with New York's offset: %s", got[0].LogicalDate, want)
	}
	if got[0].DataIntervalEnd != got[1].DataIntervalStart {
		t.Errorf("intervals %v and %v are not consecutive", got[0], got[1])
	}
}

// TestDagsNextErrors checks that bad usage exits 2 with a message on stderr
// and nothing on stdout.
func TestDagsNextErrors(t *testing.T) {
	tests := []struct {
		name string
		dir  string // working directory; "" for the package folder
		args []string
		want []string // substrings of stderr
	}{
		{"--n 0", "", []string{"testdata/next/nightly.yaml", "--n", "0"}, []string{"--n"}},
		{"--n negative", "", []string{"testdata/next/nightly.yaml", "--n", "-2"}, []string{"--n"}},
		{"--n not a number", "", []string{"testdata/next/nightly.yaml", "--n", "three"}, []string{"--n", "three"}},
		{"bad --from", "", []string{"testdata/next/nightly.yaml", "--from", "yesterday"}, []string{"--from", "yesterday"}},
		{"impossible --from date", "", []string{"testdata/next/nightly.yaml", "--from", "2026-02-30"}, []string{"--from", "2026-02-30"}},
		{"DAG without a schedule, by file", "", []string{"testdata/next/manual.yaml"}, []string{"manual", "schedule"}},
		{"DAG without a schedule, by id", "", []string{"manual", "--dags", "testdata/next"}, []string{"manual", "schedule"}},
		{"DAG scheduled on datasets only", "", []string{"testdata/datasets/on_datasets.yaml"}, []string{"on_datasets", "no cron schedule", "datasets: s3://lake/orders"}},
		{"unknown DAG id", "", []string{"nope", "--dags", "testdata/next"}, []string{`"nope"`, "testdata/next"}},
		{"unknown DAG id in a folder with broken files", "", []string{"nope", "--dags", "testdata/validate/mixed"}, []string{`"nope"`, "kiln dags validate"}},
		{"DAG id of a broken file", "", []string{"broken_cron", "--dags", "testdata/validate/mixed"}, []string{`"broken_cron"`}},
		{"broken DAG file", "", []string{"testdata/validate/mixed/broken_cron.yaml"}, []string{"testdata/validate/mixed/broken_cron.yaml:2:11: schedule: "}},
		{"--dags folder missing", "", []string{"nightly", "--dags", "testdata/no-such-folder"}, []string{"nightly", "testdata/no-such-folder"}},
		{"default --dags is ./dags", t.TempDir(), []string{"nightly"}, []string{"nightly", "dags"}},
		{"no argument", "", []string{}, []string{"arg"}},
		{"two arguments", "", []string{"testdata/next/nightly.yaml", "testdata/next/ending.yaml"}, []string{"arg"}},
		{"unknown flag", "", []string{"testdata/next/nightly.yaml", "--count", "3"}, []string{"--count"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKilnIn(t, tt.dir, append([]string{"dags", "next"}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want empty", stdout)
			}
			// Problems in a DAG file come first, one FILE:LINE:COL line each;
			// then kiln's own message, and after a wrong command line the
			// usage line and where the help is.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if n := len(lines); n >= 3 && strings.HasPrefix(lines[n-2], "Usage: kiln dags next PATH_OR_DAG") && strings.HasPrefix(lines[n-1], "Run 'kiln dags next -h'") {
				lines = lines[:n-2]
			}
			if !strings.HasPrefix(lines[len(lines)-1], "kiln: ") {
				t.Errorf("stderr = %q, want it to end with a line starting with \"kiln: \" (and the usage)", stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr = %q, want it to mention %q", stderr, want)
				}
			}
		})
	}
}

// TestDagsNextByIDFromDefaultFolder runs with the working directory holding
// a dags/ folder and no --dags flag.
func TestDagsNextByIDFromDefaultFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/nightly.yaml": readFixture(t, "next/nightly.yaml")})
	stdout, stderr, code := runKilnIn(t, dir, "dags", "next", "nightly", "--from", "2026-03-08", "--n", "1", "--json")
	if code != 0 {
		t.Fatalf("exit code = %d, want 0 (stderr %q)", code, stderr)
	}
	want := []interval{iv("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00")}
	if diff := cmp.Diff(want, decodeIntervals(t, stdout)); diff != "" {
		t.Errorf("intervals differ (-want +got):\n%s", diff)
	}
}
