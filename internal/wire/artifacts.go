package wire

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ArtifactsBucket is the JetStream object store that holds artifacts
// (docs/artifacts.md), each object named by the hex SHA-256 of its
// content, so a content is stored once however many tries produce it.
const ArtifactsBucket = "KILN_ARTIFACTS"

// WorkersBucket is the key-value bucket in which each worker keeps what it
// serves under its name: its queues and the builds of its plugins
// (WorkerInfo). The scheduler reads it to know which plugin build a task
// would run with, a part of the task's cache key.
const WorkersBucket = "KILN_WORKERS"

// WorkerInfoInterval is how often a worker writes its WorkerInfo again; an
// entry older than WorkerInfoTTL belongs to a worker that is gone.
const (
	WorkerInfoInterval = 30 * time.Second
	WorkerInfoTTL      = 3 * WorkerInfoInterval
)

// Artifact is a file or folder a try produced and stored in
// ArtifactsBucket under its SHA256.
type Artifact struct {
	// Name is the name the task declared it under (`artifacts: {NAME: PATH}`).
	Name string `json:"name"`
	// Path is the declared path, relative to the try's working directory.
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 of the stored object: the file's content,
	// or the tar of the folder.
	SHA256 string `json:"sha256"`
	// Size is the stored object's size in bytes.
	Size int64 `json:"size"`
	// MediaType is the file's media type (application/x-tar for a folder).
	MediaType string `json:"media_type"`
	// Dir is set for a folder, stored as a tar.
	Dir bool `json:"dir,omitempty"`
}

// Input is an upstream artifact a try reads: the worker downloads it into
// the try's working directory before the stage starts, checking its
// SHA-256 (docs/artifacts.md#inputs).
type Input struct {
	// Name is the input's name in the task (`inputs: {NAME: TASK.ARTIFACT}`).
	Name string `json:"name"`
	// From is the reference as written, TASK.ARTIFACT, for messages.
	From string `json:"from"`
	// Artifact is the upstream artifact, as its try recorded it.
	Artifact Artifact `json:"artifact"`
}

// WorkerInfo is what a worker keeps under its name in WorkersBucket.
type WorkerInfo struct {
	Name        string                 `json:"name"`
	Host        string                 `json:"host"`
	KilnVersion string                 `json:"kiln_version"`
	Queues      []string               `json:"queues"`
	Plugins     map[string]PluginBuild `json:"plugins"`
	Time        time.Time              `json:"time"`
}

// PluginBuild is the build of a stage plugin a worker runs.
type PluginBuild struct {
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// sha256Hex is the shape of an artifact's object name.
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckSHA256 reports whether s is a hex SHA-256, the name of an object in
// ArtifactsBucket.
func CheckSHA256(s string) error {
	if !sha256Hex.MatchString(s) {
		return fmt.Errorf("invalid artifact hash %q: want 64 lower-case hex digits", s)
	}
	return nil
}

// ArtifactsConfig is the configuration of ArtifactsBucket; maxBytes
// bounds it (-1: no bound but the server's).
func ArtifactsConfig(maxBytes int64) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      ArtifactsBucket,
		Description: "Kiln artifacts, named by their SHA-256 (docs/artifacts.md)",
		Storage:     jetstream.FileStorage,
		MaxBytes:    maxBytes,
	}
}

// WorkersConfig is the configuration of WorkersBucket.
func WorkersConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      WorkersBucket,
		Description: "Kiln workers: queues and plugin builds, by worker name",
		Storage:     jetstream.FileStorage,
		History:     1,
		TTL:         WorkerInfoTTL,
	}
}

// EnsureBuckets creates ArtifactsBucket and WorkersBucket, or sets the
// artifacts bucket's bound to maxBytes. Idempotent; the scheduler calls it
// on start.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, artifactsMaxBytes int64) error {
	if _, err := js.CreateOrUpdateObjectStore(ctx, ArtifactsConfig(artifactsMaxBytes)); err != nil {
		return fmt.Errorf("ensuring object store %s: %w", ArtifactsBucket, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, WorkersConfig()); err != nil {
		return fmt.Errorf("ensuring key-value bucket %s: %w", WorkersBucket, err)
	}
	return nil
}

// ErrArtifactsFull is what a worker reports when the artifact store has no
// room left for an artifact.
var ErrArtifactsFull = errors.New("the artifact store is full")
