package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// These tests move files between tries through the object store of a real
// embedded NATS server, with tries run by the real shell plugin.

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// shellDone runs a shell command as a try on queue and returns its
// finished event.
func shellDone(h *harness, queue, cmd string, a wire.Assignment) received {
	h.t.Helper()
	if a.TryKey == (wire.TryKey{}) {
		a.TryKey = newTry("shell")
	}
	a.Plugin = "shell"
	a.With = map[string]any{"command": cmd}
	h.assign(queue, a)
	return h.wait(a.TryKey, wire.EventFinished, 60*time.Second)
}

// input is the input name of a try, from the artifact of task.
func input(name, task string, a wire.Artifact) wire.Input {
	return wire.Input{Name: name, From: task + "." + a.Name, Artifact: a}
}

// tries lists the tries' working directories left in a data folder.
func tries(t *testing.T, data string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(data, "kiln-try-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// TestArtifactsBetweenWorkers: a try on one `kiln worker` leaves a file,
// a folder and another file as artifacts; a try on another, with its own
// data folder and nothing shared with the first but NATS, gets them as
// inputs, in its working directory, by placeholder and by variable.
func TestArtifactsBetweenWorkers(t *testing.T) {
	h := newHarness(t)
	obs := h.ensureBuckets(-1)
	dataA, dataB := t.TempDir(), t.TempDir()
	h.startKilnWorker("--queue", "a", "--name", "worker-a", "--data", dataA)
	h.startKilnWorker("--queue", "b", "--name", "worker-b", "--data", dataB)

	produce := `mkdir -p out/data/sub && printf 'id,x\n1,2\n' > out/features.csv && printf deep > out/data/sub/f && ln -s sub/f out/data/link && printf '{"w": 1}' > model.json`
	fin := shellDone(h, "a", produce, wire.Assignment{Artifacts: map[string]string{
		"features": "out/features.csv", "data": "out/data", "model": "model.json",
	}})
	if !fin.Success || fin.worker != "worker-a" {
		t.Fatalf("producer: success %v on %s, error %q", fin.Success, fin.worker, fin.Error)
	}
	var names []string
	byName := map[string]wire.Artifact{}
	for _, a := range fin.Artifacts {
		names = append(names, a.Name)
		byName[a.Name] = a
	}
	if !slices.Equal(names, []string{"data", "features", "model"}) {
		t.Fatalf("artifacts %v, want data, features and model in that order", names)
	}
	if got, want := byName["features"], (wire.Artifact{Name: "features", Path: "out/features.csv", SHA256: sha("id,x\n1,2\n"), Size: 9, MediaType: byName["features"].MediaType}); got != want || got.MediaType == "" {
		t.Errorf("features = %+v, want %+v with a media type", got, want)
	}
	if m := byName["model"]; m.SHA256 != sha(`{"w": 1}`) || m.MediaType != "application/json" || m.Dir {
		t.Errorf("model = %+v, want the JSON file's hash and media type", m)
	}
	if d := byName["data"]; !d.Dir || d.MediaType != "application/x-tar" || d.Size == 0 {
		t.Errorf("data = %+v, want a folder stored as a tar", d)
	}
	for _, a := range fin.Artifacts {
		if info, err := obs.GetInfo(h.ctx, a.SHA256); err != nil || info.Size != uint64(a.Size) {
			t.Errorf("object of %s: %+v, %v; want %d bytes stored", a.Name, info, err, a.Size)
		}
	}

	consume := `cat ${KILN_INPUT_FEATURES}; cat "$KILN_INPUT_DATA/sub/f"; echo; readlink "$KILN_INPUT_DATA/link"; cat "$MODEL"; echo
test "$PWD" = "$KILN_WORKDIR" && echo in-workdir
test "$KILN_INPUT_FEATURES" = "$KILN_WORKDIR/inputs/features/features.csv" && test "$KILN_INPUT_DATA" = "$KILN_WORKDIR/inputs/data" && echo placed`
	k := newTry("consume")
	fin = shellDone(h, "b", consume, wire.Assignment{TryKey: k,
		Env: map[string]string{"MODEL": wire.InputPlaceholder("model")},
		Inputs: []wire.Input{
			input("features", "produce", byName["features"]),
			input("data", "produce", byName["data"]),
			input("model", "produce", byName["model"]),
		}})
	log := string(logOf(t, h.events(k)))
	if !fin.Success || fin.worker != "worker-b" {
		t.Fatalf("consumer: success %v on %s, error %q; log:\n%s", fin.Success, fin.worker, fin.Error, log)
	}
	for _, want := range []string{
		"id,x\n1,2\ndeep\nsub/f\n{\"w\": 1}\nin-workdir\nplaced\n",
		"kiln: input features (produce.features): inputs/features/features.csv, 9 B, SHA-256 " + sha("id,x\n1,2\n") + " verified",
		"kiln: running: cat " + dataB + string(filepath.Separator) + "kiln-try-",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the consumer's log lacks %q:\n%s", want, log)
		}
	}
	for _, data := range []string{dataA, dataB} {
		waitFor(t, func() bool { return len(tries(t, data)) == 0 })
	}
}

// TestBadInputs: an input whose object is altered in the store or missing
// fails the try before its stage runs, with an error naming the input, its
// upstream and the problem; the try's working directory, with what was
// downloaded, is removed.
func TestBadInputs(t *testing.T) {
	h := newHarness(t)
	obs := h.ensureBuckets(-1)
	h.start(Config{Runner: shellHost(t)})
	const orig = "feature table v1\n"
	file := wire.Artifact{Name: "table", Path: "out/table.csv", SHA256: sha(orig), Size: int64(len(orig))}
	folder := file
	folder.Dir, folder.SHA256 = true, sha("a tar")
	tests := []struct {
		name   string
		stored string // put under the artifact's name; "" for none
		in     wire.Artifact
		err    string
	}{
		{"altered, same size", strings.ToUpper(orig), file,
			"input features (prep.table): the stored object's SHA-256 is " + sha(strings.ToUpper(orig)) + ", want " + sha(orig) + ": the artifact store was altered"},
		{"altered, other size", orig + "more", file,
			"input features (prep.table): the stored object has more than the 17 bytes wanted: the artifact store was altered"},
		{"altered, shorter", orig[:5], file,
			"input features (prep.table): the stored object has 5 bytes, want 17: the artifact store was altered"},
		{"altered folder, not a tar", "not a tar at all!", folder,
			"input features (prep.table): the stored object's SHA-256 is " + sha("not a tar at all!") + ", want " + sha("a tar") + ": the artifact store was altered"},
		{"missing", "", wire.Artifact{Name: "table", Path: "t.csv", SHA256: sha("never stored"), Size: 3},
			"input features (prep.table): the artifact store has no object " + sha("never stored") + ": it was removed from the store, or the store was lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stored != "" {
				if _, err := obs.PutBytes(h.ctx, tt.in.SHA256, []byte(tt.stored)); err != nil {
					t.Fatal(err)
				}
			}
			marker := filepath.Join(t.TempDir(), "ran")
			k := newTry("bad_input")
			fin := shellDone(h, "default", `touch "$MARKER"`, wire.Assignment{TryKey: k,
				Env:    map[string]string{"MARKER": marker},
				Inputs: []wire.Input{input("features", "prep", tt.in)}})
			if fin.Success || fin.Error != tt.err || fin.ExitCode != nil {
				t.Errorf("finished = success %v, exit %v, error %q; want error %q", fin.Success, fin.ExitCode, fin.Error, tt.err)
			}
			if got := string(logOf(t, h.events(k))); got != "kiln: "+tt.err+"\n" {
				t.Errorf("log = %q, want the error only", got)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the stage ran")
			}
			waitFor(t, func() bool { return len(tries(t, h.dataDir())) == 0 })
		})
	}
}

// TestArtifactRefusals: a declared artifact that is missing, outside the
// working directory by its path or through a symlink, or not a file or
// folder fails the try that should have left it, naming it; the try's
// working directory is removed.
func TestArtifactRefusals(t *testing.T) {
	h := newHarness(t)
	h.ensureBuckets(-1)
	h.start(Config{Runner: shellHost(t)})
	tests := []struct {
		name, cmd, path string
		err             string // a part of the error
	}{
		{"missing", "true", "models/model.pkl", "artifact it: models/model.pkl was not written"},
		{"dot dot", "true", "../../etc/passwd", "artifact it: ../../etc/passwd is outside the task's working directory"},
		{"absolute", "true", "/etc/passwd", "artifact it: /etc/passwd is outside the task's working directory"},
		{"symlink out", "ln -s /etc/passwd leak", "leak", "artifact it: leak leads out of the task's working directory, to /etc/passwd"},
		{"symlink on the path", "ln -s /etc etc", "etc/passwd", "artifact it: etc/passwd leads out of the task's working directory, to /etc/passwd"},
		{"dangling symlink", "ln -s nothing gone", "gone", "artifact it: gone was not written"},
		{"absolute symlink in a folder", "mkdir d && ln -s /etc/passwd d/p", "d",
			"artifact it: reading d: symlink p leads to the absolute path /etc/passwd; a folder artifact may hold relative symlinks within it only"},
		{"symlink out of a folder", "mkdir d && echo x > x && ln -s ../x d/p", "d", "artifact it: reading d: symlink p (to ../x): leads out of the folder, to "},
		{"named pipe", "mkfifo p", "p", "artifact it: p is a named pipe, not a file or folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTry("refused")
			fin := shellDone(h, "default", tt.cmd, wire.Assignment{TryKey: k, Artifacts: map[string]string{"it": tt.path}})
			if fin.Success || !strings.Contains(fin.Error, tt.err) || fin.ExitCode == nil || *fin.ExitCode != 0 || fin.Artifacts != nil {
				t.Errorf("finished = success %v, exit %v, artifacts %v, error %q; want exit 0 and an error with %q",
					fin.Success, fin.ExitCode, fin.Artifacts, fin.Error, tt.err)
			}
			if log := string(logOf(t, h.events(k))); !strings.HasSuffix(log, "kiln: "+fin.Error+"\n") {
				t.Errorf("log = %q, want the error last", log)
			}
			waitFor(t, func() bool { return len(tries(t, h.dataDir())) == 0 })
		})
	}

	// A symlink within the working directory is followed.
	fin := shellDone(h, "default", "echo hi > real && ln -s real alias", wire.Assignment{Artifacts: map[string]string{"it": "alias"}})
	if !fin.Success || len(fin.Artifacts) != 1 || fin.Artifacts[0].SHA256 != sha("hi\n") {
		t.Errorf("a symlink within the working directory: success %v, artifacts %+v, error %q", fin.Success, fin.Artifacts, fin.Error)
	}
}

// TestSameContentStoredOnce: a file and a folder with the same content,
// whenever and however they were written, make the same objects, stored
// once.
func TestSameContentStoredOnce(t *testing.T) {
	h := newHarness(t)
	obs := h.ensureBuckets(-1)
	h.start(Config{Runner: shellHost(t)})
	decl := map[string]string{"file": "f", "folder": "d"}
	first := shellDone(h, "default", "printf same > f && mkdir -p d/s && printf a > d/s/a && chmod 600 d/s/a && touch -d 2001-02-03 d/s/a",
		wire.Assignment{Artifacts: decl})
	k := newTry("again")
	again := shellDone(h, "default", "mkdir -p d/s && printf a > d/s/a && printf same > f",
		wire.Assignment{TryKey: k, Artifacts: decl})
	if !first.Success || !again.Success {
		t.Fatalf("tries failed: %q, %q", first.Error, again.Error)
	}
	if diff := cmp.Diff(first.Artifacts, again.Artifacts); diff != "" {
		t.Errorf("artifacts of the same content differ (-first +again):\n%s", diff)
	}
	objects, err := obs.List(h.ctx)
	if err != nil || len(objects) != 2 {
		t.Errorf("%d objects stored (%v), want 2", len(objects), err)
	}
	if log := string(logOf(t, h.events(k))); strings.Count(log, ", already stored\n") != 2 {
		t.Errorf("the second try's log does not say both were stored already:\n%s", log)
	}
}

// TestFullArtifactStore: an artifact that does not fit in the store fails
// its try with an error that says so and names it; the worker goes on,
// and the next artifact that fits is stored.
func TestFullArtifactStore(t *testing.T) {
	h := newHarness(t)
	obs := h.ensureBuckets(1 << 20)
	h.start(Config{Runner: shellHost(t)})
	fin := shellDone(h, "default", "head -c 3145728 /dev/zero > big", wire.Assignment{Artifacts: map[string]string{"big": "big"}})
	if want := "artifact big (big, 3.0 MiB): " + wire.ErrArtifactsFull.Error() + ": "; fin.Success || !strings.HasPrefix(fin.Error, want) {
		t.Errorf("finished = success %v, error %q; want an error starting %q", fin.Success, fin.Error, want)
	}
	fin = shellDone(h, "default", "echo fits > small", wire.Assignment{Artifacts: map[string]string{"small": "small"}})
	if !fin.Success {
		t.Fatalf("the next try: %s", fin.Error)
	}
	if _, err := obs.GetInfo(h.ctx, sha("fits\n")); err != nil {
		t.Errorf("the artifact that fits: %v", err)
	}
}

// TestFull: the errors JetStream answers a publish with when it has no
// room, as Put returns them, and others.
func TestFull(t *testing.T) {
	for _, tt := range []struct {
		err  error
		full bool
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}, true},
		{fmt.Errorf("storing: %w", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10002, Description: "resource limits exceeded for account"}, true},
		{&jetstream.APIError{Code: 500, ErrorCode: 10047, Description: "insufficient storage resources available"}, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, false},
		{jetstream.ErrStreamNotFound, false},
		{errors.New("maximum bytes exceeded"), false},
	} {
		if got := full(tt.err); got != tt.full {
			t.Errorf("full(%v) = %v, want %v", tt.err, got, tt.full)
		}
	}
}
