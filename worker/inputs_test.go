package worker

import "testing"

// TestInputNames: an input's name names one folder of inputs/, and a file
// input is saved under its upstream base name unless that is no name.
func TestInputNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"model": true, "Features_2": true,
		"": false, ".": false, "..": false, "a/b": false, `a\b`: false, "/abs": false,
	} {
		if err := checkInputName(name); (err == nil) != ok {
			t.Errorf("checkInputName(%q) = %v, want ok %v", name, err, ok)
		}
	}
	for p, want := range map[string]string{
		"out/model.pkl": "model.pkl", "model.pkl": "model.pkl", "out/": "out",
		".": "in", "/": "in", "..": "in", "out/..": "in",
	} {
		if got := baseName(p, "in"); got != want {
			t.Errorf("baseName(%q) = %q, want %q", p, got, want)
		}
	}
}
