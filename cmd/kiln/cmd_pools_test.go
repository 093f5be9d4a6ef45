package main

import (
	"strings"
	"testing"
)

func TestPools(t *testing.T) {
	e := newCLIEnv(t)
	stdout, _, code := e.run("pools", "list", "--json")
	if code != 0 || strings.Join(strings.Fields(stdout), "") != `[{"name":"default_pool","slots":128}]` {
		t.Errorf("list --json: exit %d, %s", code, stdout)
	}
	stdout, stderr, code := e.run("pools", "set", "gpu", "4")
	if code != 0 || strings.TrimSpace(stdout) != "pool gpu has 4 slot(s)" {
		t.Errorf("set: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, _, _ = e.run("pools", "list")
	if got := strings.Join(strings.Fields(stdout), " "); got != "POOL SLOTS default_pool 128 gpu 4" {
		t.Errorf("table = %q", got)
	}
	if stdout, _, code := e.run("pools", "delete", "gpu"); code != 0 || strings.TrimSpace(stdout) != "pool gpu deleted" {
		t.Errorf("delete: exit %d, %q", code, stdout)
	}

	_, stderr, code = e.run("pools", "delete", "gpu")
	wantExit(t, code, stderr, 1, "gpu")
	_, stderr, code = e.run("pools", "delete", "default_pool")
	wantExit(t, code, stderr, 2, "default_pool")
	for _, slots := range []string{"-1", "many", "1.5"} {
		_, stderr, code = e.run("pools", "set", "gpu", "--", slots)
		wantExit(t, code, stderr, 2, "SLOTS")
	}
	_, stderr, code = e.run("pools", "set", "gpu")
	wantExit(t, code, stderr, 2)
}
