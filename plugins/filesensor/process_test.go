package filesensor_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/filesensor"
	"github.com/kilnhq/kiln/plugins/host"
)

func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){filesensor.Name: filesensor.Main}, nil)
}

// TestProcess pokes through a real plugin process, as a worker does: not
// yet, then met once the file is there.
func TestProcess(t *testing.T) {
	h := plugintest.NewHost(t, nil)

	info, err := h.Describe(t.Context(), filesensor.Name)
	if err != nil || info.Name != filesensor.Name || !info.Sensor {
		t.Fatalf("Describe: %+v, %v; want a sensor", info, err)
	}
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "output")
	req := host.Request{
		With:    map[string]any{"path": "in/*.csv", "min_size": 2},
		Env:     []string{"KILN_OUTPUT=" + out},
		WorkDir: dir,
	}

	var log bytes.Buffer
	res, err := h.Run(context.Background(), filesensor.Name, req, &log)
	if err != nil || res.Success || !res.PokeAgain {
		t.Fatalf("first poke: %+v, %v; want poke again", res, err)
	}
	if want := "kiln: no file matches " + filepath.Join(dir, "in/*.csv"); !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want a line %q", log.String(), want)
	}

	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in", "a.csv"), []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	res, err = h.Run(context.Background(), filesensor.Name, req, &log)
	if err != nil || !res.Success {
		t.Fatalf("second poke: %+v, %v\nlog:\n%s", res, err, log.String())
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "path=in/a.csv\nmatches=1\n" {
		t.Errorf("outputs %q, %v", b, err)
	}
}
