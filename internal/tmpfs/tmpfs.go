// Package tmpfs gives tests a small file system of their own, to fill up:
// a tmpfs mounted in a temporary folder (docs/operations.md#damaged-or-full-data-folder).
package tmpfs

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new temporary folder and
// returns the folder; it is unmounted when the test ends. It needs root
// (or CAP_SYS_ADMIN) and mount(8): where mounting fails, the test is
// skipped with the reason.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs for a full-disk test (it needs root or CAP_SYS_ADMIN, and mount(8)): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs on %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Resize changes the size of the tmpfs Mount mounted on dir, keeping
// its files: growing it makes room on a full disk.
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("resizing the tmpfs on %s: %v: %s", dir, err, out)
	}
}

// Fill writes the file path until it holds size bytes, or with size < 0
// until its file system is full; deleting it frees that room again.
func Fill(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n := int64(0); size < 0 || n < size; n += int64(len(buf)) {
		if size >= 0 {
			buf = buf[:min(int64(len(buf)), size-n)]
		}
		if _, err := f.Write(buf); err != nil {
			if size < 0 {
				return
			}
			t.Fatalf("filling %s: %v", path, err)
		}
	}
}
