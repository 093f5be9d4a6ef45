package worker

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
)

// BenchmarkArtifact1GiB moves a 1 GiB file from a try on one `kiln worker`
// process to a try on another, through the artifact store of an embedded
// NATS server on loopback (in the benchmark's process). It reports the
// throughput of the upload (hashing the file, then sending it) and of the
// download (receiving, hashing and writing it), each from the worker's
// events, and the peak resident memory (VmHWM) of each worker process,
// without its plugin processes. Run it with -benchtime=1x.
func BenchmarkArtifact1GiB(b *testing.B) {
	const size = 1 << 30
	h := newHarness(b)
	h.ensureBuckets(-1)
	up := h.startKilnWorker("--queue", "up", "--name", "up", "--data", b.TempDir())
	down := h.startKilnWorker("--queue", "down", "--name", "down", "--data", b.TempDir())
	for _, q := range []string{"up", "down"} {
		if fin := shellDone(h, q, "true", wire.Assignment{}); !fin.Success {
			b.Fatal(fin.Error)
		}
	}
	var upTime, downTime time.Duration
	for i := range b.N {
		// Each round's file differs by its first line, so it is sent.
		k := newTry("produce")
		cmd := fmt.Sprintf("{ echo %d; head -c %d /dev/zero; } > big && echo written", i, size)
		fin := shellDone(h, "up", cmd, wire.Assignment{TryKey: k, Artifacts: map[string]string{"big": "big"}})
		if !fin.Success {
			b.Fatal(fin.Error)
		}
		upTime += fin.Time.Sub(logEventWith(b, h.events(k), "written\n").Time)

		k = newTry("consume")
		cmd = fmt.Sprintf("test $(wc -c < %s) = %d", wire.InputPlaceholder("big"), fin.Artifacts[0].Size)
		fin = shellDone(h, "down", cmd, wire.Assignment{TryKey: k, Inputs: []wire.Input{input("big", "produce", fin.Artifacts[0])}})
		if !fin.Success {
			b.Fatal(fin.Error)
		}
		evs := h.events(k)
		downTime += logEventWith(b, evs, "kiln: input big").Time.Sub(evs[0].Time)
	}
	mb := float64(b.N) * size / 1e6
	b.ReportMetric(mb/upTime.Seconds(), "MB/s-up")
	b.ReportMetric(mb/downTime.Seconds(), "MB/s-down")
	b.ReportMetric(float64(peakRSS(b, up.cmd.Process.Pid))/1e6, "MB-peak-RSS-up")
	b.ReportMetric(float64(peakRSS(b, down.cmd.Process.Pid))/1e6, "MB-peak-RSS-down")
}

// logEventWith returns the first log event of evs whose chunk holds s.
func logEventWith(b *testing.B, evs []received, s string) received {
	b.Helper()
	for _, e := range evs {
		if e.Kind == wire.EventLog && strings.Contains(string(e.Data), s) {
			return e
		}
	}
	b.Fatalf("no log event with %q", s)
	return received{}
}

// peakRSS is the peak resident memory of a process, in bytes, from the
// VmHWM line of /proc/PID/status.
func peakRSS(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/PID/status")
	return 0
}
