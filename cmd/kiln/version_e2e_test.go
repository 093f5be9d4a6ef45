package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestVersionEverywhere checks that the version linked into the binary is
// what `kiln version`, `kiln --version`, /healthz, /metrics and the web
// UI's footer show.
func TestVersionEverywhere(t *testing.T) {
	want := regexp.MustCompile(`^kiln ` + regexp.QuoteMeta(testVersion) + ` \(.*go1\.[0-9]+.*\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := runKiln(t, args...)
		if code != 0 || !want.MatchString(stdout) {
			t.Errorf("kiln %s: exit %d, %q %q; want a line matching %s", strings.Join(args, " "), code, stdout, stderr, want)
		}
	}
	stdout, _, code := runKiln(t, "version", "--json")
	var v struct{ Version, GoVersion string }
	if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil || v.Version != testVersion {
		t.Errorf("kiln version --json: exit %d, %s (%v)", code, stdout, err)
	}

	s := startStandalone(t, "../../examples/dags", t.TempDir(), "--workers", "0")
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return string(b)
	}
	if body := get("/healthz"); !strings.Contains(body, `"version":"`+testVersion+`"`) {
		t.Errorf("/healthz = %s, want version %s", body, testVersion)
	}
	metric := regexp.MustCompile(`(?m)^kiln_build_info\{goversion="go1\.[^"]+",revision="[^"]*",version="` + regexp.QuoteMeta(testVersion) + `"\} 1$`)
	if body := get("/metrics"); !metric.MatchString(body) {
		t.Errorf("/metrics has no line matching %s", metric)
	}
	if body := get("/dags"); !strings.Contains(body, `<span id="version">`+testVersion+`</span>`) {
		t.Errorf("the UI's footer does not show %s", testVersion)
	}
}
