// Package dockertest gives tests a Docker Engine and a small image built
// on it. Where no Engine answers, the tests that need one skip, unless
// KILN_REQUIRE_DOCKER=1 (which `make test` sets wherever one answers):
// then they fail, so that they never skip quietly on a machine with Docker.
package dockertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/kilnhq/kiln/internal/dockerimage"
	"github.com/kilnhq/kiln/plugins/docker"
)

// BusyboxTag is the test image: FROM scratch with a static busybox.
const BusyboxTag = "kiln-test/busybox:latest"

// Engine returns the environment's Docker Engine, closed when the test
// ends.
func Engine(t testing.TB) *docker.Engine {
	t.Helper()
	eng, err := docker.NewEngine()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = eng.Check(ctx)
	}
	if err != nil {
		if os.Getenv("KILN_REQUIRE_DOCKER") == "1" {
			t.Fatalf("KILN_REQUIRE_DOCKER=1 but no Docker Engine answers: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

var (
	busyboxOnce sync.Once
	busyboxID   string
	busyboxErr  error
)

// contentLabel holds a hash of what an image was built from, so that a
// test process reuses the image an earlier one built rather than build it
// again and leave the old one dangling.
const contentLabel = "kiln.test.content"

// Busybox makes sure BusyboxTag is built from this machine's busybox, once
// per test process, and returns its ID.
func Busybox(t testing.TB, eng *docker.Engine) string {
	t.Helper()
	busyboxOnce.Do(func() {
		var bb []byte
		if bb, busyboxErr = dockerimage.Busybox(dockerimage.BusyboxPath); busyboxErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sum := sha256.Sum256(bb)
		content := hex.EncodeToString(sum[:])
		if img, err := eng.Client().ImageInspect(ctx, BusyboxTag); err == nil && img.Config != nil && img.Config.Labels[contentLabel] == content {
			busyboxID = img.ID
			return
		}
		busyboxID, busyboxErr = dockerimage.Build(ctx, eng.Client(), BusyboxTag, dockerimage.BusyboxFiles(bb), "LABEL "+contentLabel+"="+content)
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxID
}

// Containers lists the containers, running or not, with a label of the
// given value.
func Containers(t testing.TB, eng *docker.Engine, label, value string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := eng.Client().ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", label+"="+value),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

// RemoveContainers removes, when the test ends, the containers with a label
// of the given value that are still there, whatever the test did.
func RemoveContainers(t testing.TB, eng *docker.Engine, label, value string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range Containers(t, eng, label, value) {
			_, _ = eng.Client().ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	})
}

// Image builds a busybox image of its own, tagged tag, with files added
// (a marker, say, so that two such images differ), and removes the tag
// when the test ends, and the image with it unless another tag has it; it
// returns the image's ID. A test that checks what a tag
// resolved to needs a tag no other test process moves.
func Image(t testing.TB, eng *docker.Engine, tag string, files map[string]dockerimage.File) string {
	t.Helper()
	bb, err := dockerimage.Busybox(dockerimage.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	all := dockerimage.BusyboxFiles(bb)
	maps.Copy(all, files)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := dockerimage.Build(ctx, eng.Client(), tag, all)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = eng.Client().ImageRemove(context.Background(), tag, client.ImageRemoveOptions{})
	})
	return id
}
