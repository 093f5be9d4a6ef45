// Package tools builds the example image kiln-example/tools:latest, in
// which examples/dags/container_report.yaml runs a step: a static busybox
// for /bin/sh and its tools, and the example's script summarize in
// /usr/local/bin. `make example-image` builds it (examples/image); it
// needs no registry (internal/dockerimage).
package tools

import (
	"context"
	_ "embed"

	"github.com/moby/moby/client"

	"github.com/kilnhq/kiln/internal/dockerimage"
)

// Tag is the image's name, as the example DAG gives it.
const Tag = "kiln-example/tools:latest"

// summarize is the awk script the example DAG's report task runs.
//
//go:embed summarize.awk
var summarize []byte

// Build builds the image on the Engine cli talks to and returns its ID.
// It fails saying what to install when there is no static busybox at
// /bin/busybox.
func Build(ctx context.Context, cli *client.Client) (string, error) {
	bb, err := dockerimage.Busybox(dockerimage.BusyboxPath)
	if err != nil {
		return "", err
	}
	files := dockerimage.BusyboxFiles(bb)
	files["usr/local/bin/summarize"] = dockerimage.File{Data: summarize, Mode: 0o755}
	return dockerimage.Build(ctx, cli, Tag, files)
}
