// Command image builds the example image kiln-example/tools:latest on the
// Docker Engine ($DOCKER_HOST, else the local socket) and prints its ID:
// `make example-image` runs it. examples/dags/container_report.yaml runs a
// step in that image.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/kilnhq/kiln/examples/image/tools"
	"github.com/kilnhq/kiln/plugins/docker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	id, err := build(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "example-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(id)
}

// build builds the image once an Engine answers.
func build(ctx context.Context) (string, error) {
	eng, err := docker.NewEngine()
	if err != nil {
		return "", err
	}
	defer eng.Close()
	if err := eng.Check(ctx); err != nil {
		return "", err
	}
	return tools.Build(ctx, eng.Client())
}
