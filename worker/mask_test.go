package worker

import (
	"bytes"
	"strings"
	"testing"
)

// TestMaskerSplitAnywhere writes a log with secrets in every way it can be
// cut in two or three pieces: the result is always the log with each
// secret replaced by ***.
func TestMaskerSplitAnywhere(t *testing.T) {
	secrets := []string{"hunter2", "s3cr3t-token", "ab"} // "ab" is too short to mask
	log := "user=etl password=hunter2\ntoken s3cr3t-token; hunter hunter2hunter2 ab s3cr3t\n"
	want := "user=etl password=***\ntoken ***; hunter ****** ab s3cr3t\n"
	for i := 0; i <= len(log); i++ {
		for j := i; j <= len(log); j++ {
			m := newMasker(secrets)
			var out bytes.Buffer
			emit := func(p []byte) { out.Write(p) }
			m.write([]byte(log[:i]), emit)
			m.write([]byte(log[i:j]), emit)
			m.write([]byte(log[j:]), emit)
			m.flush(emit)
			if out.String() != want {
				t.Fatalf("cut at %d and %d:\n got %q\nwant %q", i, j, out.String(), want)
			}
		}
	}
}

// TestMaskerHeldEnd: a log that ends in the start of a secret masks that
// start too; a shorter one is kept.
func TestMaskerHeldEnd(t *testing.T) {
	m := newMasker([]string{"hunter2"})
	var out strings.Builder
	emit := func(p []byte) { out.Write(p) }
	m.write([]byte("password: hunt"), emit)
	m.flush(emit)
	if got := out.String(); got != "password: ***" {
		t.Errorf("got %q", got)
	}
	out.Reset()
	m.write([]byte("say hu"), emit)
	m.flush(emit)
	if got := out.String(); got != "say hu" {
		t.Errorf("got %q", got)
	}
	if newMasker([]string{"", "x"}) != nil {
		t.Error("a masker for values too short to mask")
	}
	if got := newMasker([]string{"hunter2"}).maskString("auth failed for hunter2"); got != "auth failed for ***" {
		t.Errorf("maskString = %q", got)
	}
}

// TestLogStreamMasks: the try's log stream masks what the task writes, and
// a note of Kiln's ends a held start of a secret before it.
func TestLogStreamMasks(t *testing.T) {
	var sent bytes.Buffer
	s := newLogStream(1<<20, func(_ int64, p []byte) { sent.Write(p) })
	s.masking([]string{"hunter2"})
	s.Write([]byte("pass hun"))
	s.Write([]byte("ter2 ok\nnext hunt"))
	s.note("kiln: done")
	s.Close()
	if got, want := sent.String(), "pass *** ok\nnext ***\nkiln: done\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func BenchmarkMasker(b *testing.B) {
	m := newMasker([]string{"hunter2", "s3cr3t-token"})
	chunk := bytes.Repeat([]byte("2026-03-01 12:00:00 INFO loaded 1000 rows from table events in 12ms\n"), 1000)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		m.write(chunk, func([]byte) {})
	}
}
