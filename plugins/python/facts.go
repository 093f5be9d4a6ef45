package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// versionTimeout bounds asking an interpreter its version.
const versionTimeout = 10 * time.Second

// interpreter tells interpreters apart: an upgrade in place changes the
// file's size or modification time.
type interpreter struct {
	path  string
	size  int64
	mtime time.Time
}

// versions caches interpreters' versions for the life of the plugin
// process, so a try does not pay for starting python once more.
var versions sync.Map // interpreter -> string

// recordInterpreter sets the task's python and python_version facts, for
// its manifest (docs/reproducibility.md#plugin-facts): the interpreter's
// real path and what it says its version is. A version that cannot be
// learned is left out; the task itself then says why python does not run.
func recordInterpreter(ctx context.Context, t *sdk.Task, python string) {
	real, err := filepath.EvalSymlinks(python)
	if err != nil {
		return
	}
	t.SetFact("python", real)
	fi, err := os.Stat(real)
	if err != nil {
		return
	}
	id := interpreter{real, fi.Size(), fi.ModTime()}
	if v, ok := versions.Load(id); ok {
		t.SetFact("python_version", v.(string))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import platform; print(platform.python_version())").Output()
	if err != nil {
		return
	}
	v := strings.TrimSpace(string(out))
	versions.Store(id, v)
	t.SetFact("python_version", v)
}
