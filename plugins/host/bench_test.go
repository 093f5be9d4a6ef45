package host_test

import (
	"context"
	"io"
	"testing"

	"github.com/kilnhq/kiln/plugins/host"
)

// BenchmarkRunTrue runs `true` through a warm shell plugin: the cost of a
// small task, mostly the fork and exec of /bin/sh.
func BenchmarkRunTrue(b *testing.B) {
	h := newHost(b)
	run(b, h, "shell", shellCmd("true"))
	req := shellCmd("true")
	b.ResetTimer()
	for b.Loop() {
		res, err := h.Run(context.Background(), "shell", req, io.Discard)
		if err != nil || !res.Success {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}

// BenchmarkRunTrueCold is a task's first Run: launching `kiln plugin shell`,
// the handshake, then `true`.
func BenchmarkRunTrueCold(b *testing.B) {
	req := shellCmd("true")
	for b.Loop() {
		h := host.New(host.Config{Command: command})
		res, err := h.Run(context.Background(), "shell", req, io.Discard)
		if err != nil || !res.Success {
			b.Fatalf("%+v, %v", res, err)
		}
		b.StopTimer()
		h.Close()
		b.StartTimer()
	}
}

// BenchmarkRunEcho is one warm Run of the test plugin, which starts no
// process: the protocol's own cost per task.
func BenchmarkRunEcho(b *testing.B) {
	h := newHost(b)
	req := host.Request{With: map[string]any{"echo": "hi"}}
	run(b, h, "crash", req)
	b.ResetTimer()
	for b.Loop() {
		res, err := h.Run(context.Background(), "crash", req, io.Discard)
		if err != nil || !res.Success {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}
