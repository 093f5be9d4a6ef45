package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// TestCheckAddr: the API may listen beyond loopback only once a user or
// token exists (docs/operations.md#authentication). Nothing listens here; only the check runs.
func TestCheckAddr(t *testing.T) {
	data := t.TempDir()
	st, err := store.Open(filepath.Join(data, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	loopback := []string{"127.0.0.1:8080", "127.0.0.2:0", "[::1]:8080", "localhost:8080"}
	beyond := []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.10:8080", "kiln.example.com:8080"}
	for _, addr := range loopback {
		if err := checkAddr(addr, data, st); err != nil {
			t.Errorf("no auth, %s: %v, want nil", addr, err)
		}
	}
	for _, addr := range beyond {
		err := checkAddr(addr, data, st)
		ex, ok := err.(*exitError)
		if !ok || ex.code != 2 || !strings.Contains(ex.msg, "authentication is not configured") || !strings.Contains(ex.msg, "kiln users add NAME --role admin --data "+data) {
			t.Errorf("no auth, %s: %v, want a usage error saying how to configure it", addr, err)
		}
	}
	for _, addr := range []string{"8080", "host:port:x"} {
		if err := checkAddr(addr, data, st); err == nil || !strings.Contains(err.Error(), "--addr") {
			t.Errorf("%q: %v, want an --addr usage error", addr, err)
		}
	}

	if _, _, err := st.CreateToken(t.Context(), "ops", store.RoleAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, addr := range append(loopback, beyond...) {
		if err := checkAddr(addr, data, st); err != nil {
			t.Errorf("with a token, %s: %v, want nil", addr, err)
		}
	}
}
