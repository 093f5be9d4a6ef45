package sdk_test

import (
	"context"
	"io"
	"testing"

	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// BenchmarkNoop measures what running a stage as a plugin adds to a task:
// the same no-op stage called in-process, through a warm plugin process
// (the worker reuses one per plugin), and through a process launched for
// the task (a plugin's first task). Overhead = plugin-warm − in-process.
//
//	go test -run '^$' -bench Noop -benchtime 2000x ./plugins/sdk/
func BenchmarkNoop(b *testing.B) {
	with := map[string]any{"do": "noop"}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			t := &sdk.Task{With: []byte(`{"do":"noop"}`), Log: io.Discard}
			if err := (testStage{}).Run(context.Background(), t); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin-warm", func(b *testing.B) {
		h := newHost(b)
		run(b, h, host.Request{With: with})
		for b.Loop() {
			res, err := h.Run(context.Background(), "test", host.Request{With: with}, io.Discard)
			if err != nil || !res.Success {
				b.Fatalf("%+v, %v", res, err)
			}
		}
	})
	b.Run("plugin-cold", func(b *testing.B) {
		for b.Loop() {
			h := host.New(host.Config{Command: command})
			res, err := h.Run(context.Background(), "test", host.Request{With: with}, io.Discard)
			if err != nil || !res.Success {
				b.Fatalf("%+v, %v", res, err)
			}
			b.StopTimer()
			h.Close()
			b.StartTimer()
		}
	})
}
