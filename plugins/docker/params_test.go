package docker

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// TestSchemaAndDecode checks that the schema, which DAG files are checked
// with when they load, and the plugin's own decoding agree: what one
// refuses, so does the other.
func TestSchemaAndDecode(t *testing.T) {
	schema, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		with string
		ok   bool
	}{
		{"image only", `{"image": "busybox"}`, true},
		{"everything", `{"image": "ghcr.io/acme/train@sha256:` + strings.Repeat("a", 64) + `", "command": ["python", "-m", "train", 3, true],
			"entrypoint": "", "env": {"A": "x", "N": 1}, "workdir": "sub", "user": "1000:1000", "mounts": ["./data:/data", "/srv/models:/models:rw", "cache:/cache:ro"],
			"network": "bridge", "cpus": 1.5, "memory": "512m", "gpus": 2, "pull": "always", "platform": "linux/arm64/v8", "remove": false,
			"init": false, "stop_grace": "10s", "require_digest": true}`, true},
		{"a string command", `{"image": "busybox", "command": "echo hi | wc -c"}`, true},
		{"an image ID", `{"image": "sha256:` + strings.Repeat("b", 64) + `"}`, true},
		{"memory in bytes", `{"image": "busybox", "memory": 67108864}`, true},
		{"gpus all", `{"image": "busybox", "gpus": "all"}`, true},
		{"gpus by id", `{"image": "busybox", "gpus": ["GPU-1", "GPU-2"]}`, true},
		{"no image", `{"command": "true"}`, false},
		{"empty image", `{"image": ""}`, false},
		{"bad image", `{"image": "Not An Image"}`, false},
		{"empty command", `{"image": "busybox", "command": []}`, false},
		{"unknown key", `{"image": "busybox", "cmd": "x"}`, false},
		{"bad memory", `{"image": "busybox", "memory": "lots"}`, false},
		{"zero memory", `{"image": "busybox", "memory": 0}`, false},
		{"bad gpus", `{"image": "busybox", "gpus": "some"}`, false},
		{"no gpus", `{"image": "busybox", "gpus": 0}`, false},
		{"relative mount target", `{"image": "busybox", "mounts": ["/a:b"]}`, false},
		{"bad mount mode", `{"image": "busybox", "mounts": ["/a:/b:rx"]}`, false},
		{"bad pull", `{"image": "busybox", "pull": "sometimes"}`, false},
		{"bad platform", `{"image": "busybox", "platform": "linux"}`, false},
		{"long stop grace", `{"image": "busybox", "stop_grace": "31s"}`, false},
		{"stop grace without a unit", `{"image": "busybox", "stop_grace": "5"}`, false},
		{"no cpus", `{"image": "busybox", "cpus": 0}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.with))
			if err != nil {
				t.Fatal(err)
			}
			schemaErr := schema.Validate(v)
			_, decodeErr := decodeParams(&sdk.Task{With: []byte(tt.with)})
			switch {
			case tt.ok && schemaErr != nil:
				t.Errorf("the schema refuses it: %v", schemaErr)
			case tt.ok && decodeErr != nil:
				t.Errorf("decodeParams refuses it: %v", decodeErr)
			case !tt.ok && schemaErr == nil && tt.name != "bad image" && tt.name != "long stop grace":
				// Left to decodeParams: a reference's grammar, a bound
				// on a duration.
				t.Error("the schema accepts it")
			case !tt.ok && decodeErr == nil:
				t.Error("decodeParams accepts it")
			}
		})
	}
}

// TestSchemaTakesTemplates keeps the schema from refusing at load what
// only a template's rendering can tell.
func TestSchemaTakesTemplates(t *testing.T) {
	schema, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	with := `{"image": "{{ .params.image }}", "memory": "{{ .params.memory }}", "gpus": "{{ .params.gpus }}",
		"platform": "{{ .params.platform }}", "stop_grace": "{{ .params.grace }}s", "mounts": ["{{ .params.dir }}:/data"]}`
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(with))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(v); err != nil {
		t.Error(err)
	}
}

func TestRepoDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("c", 64)
	digests := []string{"other/repo@" + d, "ghcr.io/acme/train@" + d}
	for _, tt := range []struct{ given, want string }{
		{"ghcr.io/acme/train:2026.11", "ghcr.io/acme/train@" + d},
		{"ghcr.io/acme/train@" + d, "ghcr.io/acme/train@" + d},
		{"busybox", ""},
		{d, ""},
	} {
		if got := repoDigest(tt.given, digests); got != tt.want {
			t.Errorf("repoDigest(%q) = %q, want %q", tt.given, got, tt.want)
		}
	}
}

func TestOrphaned(t *testing.T) {
	// A process that has exited: its PID is free (unless reused at once).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(cmd.Process.Pid)
	alive := strconv.Itoa(os.Getppid())
	labels := func(worker, host, pid string) map[string]string {
		return map[string]string{LabelWorker: worker, LabelWorkerHost: host, LabelWorkerPID: pid}
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"this worker's name, from before", labels("w1", "elsewhere", alive), true},
		{"a dead worker of this host", labels("w9", "box", dead), true},
		{"a live worker of this host", labels("w9", "box", alive), false},
		{"this very process", labels("w9", "box", strconv.Itoa(os.Getpid())), false},
		{"a worker of another host", labels("w9", "elsewhere", dead), false},
		{"no pid", labels("w9", "box", ""), false},
	} {
		if got := orphaned(tt.labels, []string{"w1", "w2"}, "box"); got != tt.want {
			t.Errorf("%s: orphaned = %v, want %v", tt.name, got, tt.want)
		}
	}
}
