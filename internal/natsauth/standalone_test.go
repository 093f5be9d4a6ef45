package natsauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadStandalone: the first load creates the two seed files, readable
// by their owner only; the next one finds the same keys; a seed file
// others may read, or one without a seed, is refused.
func TestLoadStandalone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	first, err := LoadStandalone(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("folder %s: %v (%v), want mode 0700", dir, st.Mode().Perm(), err)
	}
	seeds := map[string][]byte{}
	for _, path := range []string{first.SchedulerSeed, first.WorkerSeed} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(data), "SU") {
			t.Errorf("%s holds %q, want a user seed", path, data)
		}
		seeds[path] = data
	}
	users := first.Users()
	if len(users) != 2 || users[0].Nkey == users[1].Nkey || !strings.HasPrefix(users[0].Nkey, "U") {
		t.Fatalf("users = %+v, want two distinct user keys", users)
	}

	again, err := LoadStandalone(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range again.Users() {
		if u.Nkey != users[i].Nkey {
			t.Errorf("after a restart, user %d is %s, want %s", i, u.Nkey, users[i].Nkey)
		}
	}
	for path, data := range seeds {
		if now, _ := os.ReadFile(path); string(now) != string(data) {
			t.Errorf("%s changed on the second load", path)
		}
	}

	if err := os.Chmod(first.WorkerSeed, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStandalone(dir); err == nil || !strings.Contains(err.Error(), "chmod 600 "+first.WorkerSeed) {
		t.Errorf("a seed readable by others: %v, want a refusal saying chmod 600", err)
	}
	if err := os.WriteFile(first.WorkerSeed, []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(first.WorkerSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStandalone(dir); err == nil || !strings.Contains(err.Error(), first.WorkerSeed) {
		t.Errorf("a file without a seed: %v, want an error naming it", err)
	}
}
