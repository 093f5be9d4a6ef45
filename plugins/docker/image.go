package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// image is an image resolved for one try: what runs is ID, whatever the
// tag it was given by points to later.
type image struct {
	// ID is the local image's ID, sha256:….
	ID string
	// Digest is the repo digest NAME@sha256:… the image was given by or
	// pulled as, else ID: the fact a later run can be compared by.
	Digest string
	// Platform is the image's OS/ARCH[/VARIANT].
	Platform string
}

// resolveImage makes sure the image is on the Engine, as the pull policy
// says, and returns what it resolves to now.
func resolveImage(ctx context.Context, cli *client.Client, p *params, t *sdk.Task) (*image, error) {
	if p.RequireDigest && !p.pinned {
		return nil, fmt.Errorf("image %s is given by tag, and digests are required (require_digest, or the worker's --require-image-digest): use NAME@sha256:DIGEST or the image's ID sha256:ID", p.Image)
	}
	if p.Pull == PullAlways {
		if err := pull(ctx, cli, p.Image, p.platform, t); err != nil {
			return nil, err
		}
	}
	res, err := cli.ImageInspect(ctx, p.Image)
	if cerrdefs.IsNotFound(err) {
		if p.Pull == PullNever {
			return nil, fmt.Errorf("image %s is not on the Docker host, and pull is never: build or load it on this worker first", p.Image)
		}
		if err := pull(ctx, cli, p.Image, p.platform, t); err != nil {
			return nil, err
		}
		res, err = cli.ImageInspect(ctx, p.Image)
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting image %s: %w", p.Image, err)
	}
	img := &image{ID: res.ID, Digest: res.ID, Platform: res.Os + "/" + res.Architecture}
	if res.Variant != "" {
		img.Platform += "/" + res.Variant
	}
	if d := repoDigest(p.Image, res.RepoDigests); d != "" {
		img.Digest = d
	}
	return img, nil
}

// repoDigest picks, of an image's repo digests, the one of the repository
// it was given by; "" when it has none there (a local build).
func repoDigest(given string, digests []string) string {
	if imageID.MatchString(given) {
		return ""
	}
	ref, err := reference.ParseNormalizedNamed(given)
	if err != nil {
		return ""
	}
	if d, ok := ref.(reference.Canonical); ok {
		return reference.FamiliarString(d)
	}
	for _, d := range digests {
		dref, err := reference.ParseNormalizedNamed(d)
		if err == nil && dref.Name() == ref.Name() {
			return reference.FamiliarString(dref)
		}
	}
	return ""
}

// pull pulls the image, writing a line to the task's log before and after.
func pull(ctx context.Context, cli *client.Client, ref string, platform *ocispec.Platform, t *sdk.Task) error {
	if imageID.MatchString(ref) {
		return fmt.Errorf("image %s is an image ID, which cannot be pulled: it must be on the Docker host", ref)
	}
	t.Logf("kiln: pulling %s", ref)
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := cli.ImagePull(ctx, ref, opts)
	if err == nil {
		err = resp.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("pulling image %s: %s", ref, strings.TrimSpace(err.Error()))
	}
	t.Logf("kiln: pulled %s", ref)
	return nil
}
