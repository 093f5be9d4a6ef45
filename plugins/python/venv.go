package python

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kilnhq/kiln/plugins/internal/proc"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// The environments live in one folder, each in a sub-folder named by its
// key (envKey). A folder there is complete: it is built beside it, under
// KEY.tmp-PID-N, and renamed into place only once pip has succeeded. A
// KEY.lock file, locked with flock while building, keeps concurrent tries
// on one machine from building the same environment twice; where flock
// does not work, the rename still keeps them from spoiling each other, and
// the loser of the race drops its build and uses the winner's.

// lockPoll is how often a try waiting for another's build checks the lock.
const lockPoll = 100 * time.Millisecond

// envsRoot returns the folder of the environments: $KILN_PYTHON_ENVS from
// the task's environment, else kiln/python in the user's cache folder
// ($XDG_CACHE_HOME, else ~/.cache).
func envsRoot(getenv func(string) string) (string, error) {
	if d := getenv("KILN_PYTHON_ENVS"); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("$KILN_PYTHON_ENVS %q is not an absolute path", d)
		}
		return d, nil
	}
	// The XDG spec has relative values ignored.
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "kiln", "python"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a folder for python environments (set $KILN_PYTHON_ENVS): %w", err)
	}
	return filepath.Join(d, "kiln", "python"), nil
}

// envKey names the environment of an interpreter and a lock file's content.
// The interpreter's symlinks are resolved so that an upgrade behind
// /usr/bin/python3 gets a new environment.
func envKey(python string, lock []byte) string {
	if real, err := filepath.EvalSymlinks(python); err == nil {
		python = real
	}
	if abs, err := filepath.Abs(python); err == nil {
		python = abs
	}
	h := sha256.New()
	h.Write([]byte(python))
	h.Write([]byte{0})
	h.Write(lock)
	return hex.EncodeToString(h.Sum(nil))
}

// ensureEnv returns the folder of the virtual environment for the
// interpreter python and the task's requirements file req, building it
// first if no try has yet.
func ensureEnv(ctx context.Context, t *sdk.Task, python, req string) (string, error) {
	if !filepath.IsAbs(req) && t.WorkDir != "" {
		req = filepath.Join(t.WorkDir, req)
	}
	lock, err := os.ReadFile(req)
	if err != nil {
		return "", fmt.Errorf("reading requirements: %w", err)
	}
	root, err := envsRoot(t.Getenv)
	if err != nil {
		return "", err
	}
	key := envKey(python, lock)
	dir := filepath.Join(root, key)
	short := key[:12]
	if isDir(dir) {
		t.Logf("python env %s (reused): %s", short, dir)
		return dir, nil
	}

	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating the python environments folder: %w", err)
	}
	unlock, locked, err := lockFile(ctx, filepath.Join(root, key+".lock"), func() {
		t.Logf("python env %s: waiting for another try building it", short)
	})
	if err != nil {
		return "", fmt.Errorf("waiting for python env %s: %w", short, err)
	}
	defer unlock()
	if isDir(dir) {
		t.Logf("python env %s (reused): %s", short, dir)
		return dir, nil
	}
	if locked {
		// Builds that died half-way; a live one would hold the lock.
		stale, _ := filepath.Glob(filepath.Join(root, key+".tmp-*"))
		for _, s := range stale {
			_ = os.RemoveAll(s)
		}
	}

	t.Logf("python env %s: building from %s with %s", short, filepath.Base(req), python)
	start := time.Now()
	built, err := build(ctx, t, python, req, dir)
	if err != nil {
		return "", fmt.Errorf("building python env %s from %s: %w", short, filepath.Base(req), err)
	}
	if built {
		t.Logf("python env %s (built in %.1fs): %s", short, time.Since(start).Seconds(), dir)
	} else {
		t.Logf("python env %s (reused, built meanwhile elsewhere): %s", short, dir)
	}
	return dir, nil
}

// build builds the environment beside dir and renames it into place. It
// reports false when another builder's environment got there first. It
// leaves nothing behind when it fails.
func build(ctx context.Context, t *sdk.Task, python, req, dir string) (built bool, err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), fmt.Sprintf("%s.tmp-%d-", filepath.Base(dir), os.Getpid()))
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil || !built {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return false, err
	}

	run := func(what, name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Env = t.Env
		cmd.Dir = t.WorkDir
		if err := proc.Run(ctx, cmd, t.Log); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	// The prompt would be tmp's name otherwise.
	prompt := "kiln-" + filepath.Base(dir)[:12]
	if err := run("python -m venv", python, "-m", "venv", "--prompt", prompt, tmp); err != nil {
		return false, err
	}
	if err := run("pip install", filepath.Join(tmp, "bin", "python"), "-m", "pip", "install",
		"--no-input", "--disable-pip-version-check", "-r", req); err != nil {
		return false, err
	}
	if err := relocate(tmp, dir); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if isDir(dir) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// relocate rewrites the build folder's path tmp to dir in the environment's
// scripts and pyvenv.cfg. A virtual environment names the folder it was
// built in: in its activate scripts and in the shebang of every console
// script pip installs.
func relocate(tmp, dir string) error {
	files := []string{filepath.Join(tmp, "pyvenv.cfg")}
	bin, err := os.ReadDir(filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	for _, e := range bin {
		if e.Type().IsRegular() {
			files = append(files, filepath.Join(tmp, "bin", e.Name()))
		}
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() > 1<<20 {
			continue // a large file is no script
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		// Binaries are left alone: a path of another length would break them.
		if bytes.IndexByte(b, 0) >= 0 || !bytes.Contains(b, []byte(tmp)) {
			continue
		}
		if err := os.WriteFile(f, bytes.ReplaceAll(b, []byte(tmp), []byte(dir)), fi.Mode()); err != nil {
			return err
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling until ctx is done;
// waiting is called once if it has to wait. It reports whether it got the
// lock: where the file system does not support flock, it goes on without.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), locked bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			// Closing the file releases the lock.
			return func() { f.Close() }, true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return func() {}, false, nil
		}
		if !waited {
			waited = true
			waiting()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, false, context.Cause(ctx)
		case <-time.After(lockPoll):
		}
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
