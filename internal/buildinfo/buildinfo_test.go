package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	checkout := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/kilnhq/kiln", Version: "v0.0.0-20260301120000-3f9c0e5d2a7b+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "3f9c0e5d2a7b1c44aa00bb11cc22dd33ee44ff55"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tt := range []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   Info
		str    string
	}{
		{"release", "v1.2.0", checkout,
			Info{Version: "v1.2.0", Revision: "3f9c0e5d2a7b1c44aa00bb11cc22dd33ee44ff55", Modified: true, GoVersion: "go1.26.0"},
			"kiln v1.2.0 (revision 3f9c0e5d2a7b with uncommitted changes, go1.26.0)"},
		{"checkout", "", checkout,
			Info{Version: "v0.0.0-20260301120000-3f9c0e5d2a7b+dirty", Revision: "3f9c0e5d2a7b1c44aa00bb11cc22dd33ee44ff55", Modified: true, GoVersion: "go1.26.0"},
			"kiln v0.0.0-20260301120000-3f9c0e5d2a7b+dirty (revision 3f9c0e5d2a7b with uncommitted changes, go1.26.0)"},
		{"no vcs", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			Info{Version: "devel", GoVersion: "go1.26.0"},
			"kiln devel (go1.26.0)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(tt.linked, tt.bi)
			if got != tt.want {
				t.Errorf("fromBuildInfo = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
	if got := fromBuildInfo("", nil); got.Version != "devel" || got.GoVersion == "" {
		t.Errorf("fromBuildInfo(nil) = %+v", got)
	}
}
