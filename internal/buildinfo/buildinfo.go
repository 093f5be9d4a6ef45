// Package buildinfo tells which build of Kiln is running: its version, the
// version control revision it was built from and the Go version that built
// it. `kiln version`, /healthz, the web UI's footer and the kiln_build_info
// metric all show it (docs/operations.md#version).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// version is set at link time for a release build:
//
//	go build -ldflags "-X github.com/kilnhq/kiln/internal/buildinfo.version=v1.2.0" ./cmd/kiln
//
// (make build VERSION=v1.2.0). Without it, the version comes from the build
// information Go stamps into the binary.
var version string

// Info describes the running build.
type Info struct {
	// Version is the release version, or what Go stamped for a build from
	// a checkout (a pseudo-version such as v0.0.0-20260301120000-3f9c0e5d2a7b,
	// with +dirty for uncommitted changes), or "devel" when nothing says.
	Version string `json:"version"`
	// Revision is the commit the binary was built from; "" when unknown.
	Revision string `json:"revision,omitempty"`
	// Modified is true when the checkout had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go release that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the running build's Info.
var Get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(version, bi)
})

// fromBuildInfo derives Info from the link-time version (may be "") and
// Go's build information (may be nil).
func fromBuildInfo(linked string, bi *debug.BuildInfo) Info {
	info := Info{Version: linked, GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = "devel"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

// String is the one line `kiln version` prints:
// "kiln v1.2.0 (revision 3f9c0e5d2a7b, go1.26.0)".
func (i Info) String() string {
	s := "kiln " + i.Version + " ("
	if i.Revision != "" {
		s += "revision " + ShortRevision(i.Revision)
		if i.Modified {
			s += " with uncommitted changes"
		}
		s += ", "
	}
	return s + i.GoVersion + ")"
}

// ShortRevision shortens a commit hash to the 12 characters people quote.
func ShortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
