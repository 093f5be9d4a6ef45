package main

import (
	"context"
	"net"
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
	// A host name counts as loopback when every address it has is.
	hosts := map[string][]string{"box": {"127.0.1.1"}, "both": {"127.0.0.1", "192.0.2.7"}, "v6": {"::1"}}
	lookup := func(_ context.Context, h string) ([]net.IPAddr, error) {
		var out []net.IPAddr
		for _, ip := range hosts[h] {
			out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
		}
		if out == nil {
			return nil, &net.DNSError{Err: "no such host", Name: h, IsNotFound: true}
		}
		return out, nil
	}
	for addr, want := range map[string]bool{"box:8080": true, "v6:8080": true, "both:8080": false, "nowhere:8080": false} {
		if got, err := loopbackAddr(addr, lookup); err != nil || got != want {
			t.Errorf("%s: loopback %v (%v), want %v", addr, got, err, want)
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
