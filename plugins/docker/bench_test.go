package docker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/dockertest"
	"github.com/kilnhq/kiln/plugins/docker"
)

// firstLine is a task log that notes when the container's first line
// arrives: the first write that is not one of Kiln's own lines.
type firstLine struct {
	begin time.Time
	at    time.Duration
}

func (f *firstLine) Write(p []byte) (int, error) {
	if f.at == 0 && !strings.HasPrefix(string(p), "kiln: ") {
		f.at = time.Since(f.begin)
	}
	return len(p), nil
}

// BenchmarkContainerFirstLogLine times a docker try of `echo ready` from
// the stage's Run until the container's line reaches the log, and until
// Run returns with the container removed.
func BenchmarkContainerFirstLogLine(b *testing.B) {
	eng := dockertest.Engine(b)
	dockertest.Busybox(b, eng)
	stage := docker.New()
	var first, whole time.Duration
	for b.Loop() {
		tr := newTry(b, eng, map[string]any{"image": dockertest.BusyboxTag, "command": []any{"echo", "ready"}})
		log := &firstLine{begin: time.Now()}
		tr.Log = log
		if err := stage.Run(context.Background(), tr.Task); err != nil {
			b.Fatal(err)
		}
		whole += time.Since(log.begin)
		first += log.at
	}
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "ms/first-line")
	b.ReportMetric(float64(whole.Microseconds())/1000/float64(b.N), "ms/try")
}
