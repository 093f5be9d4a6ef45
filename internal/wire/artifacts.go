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

// WorkersBucket is the key-value bucket in which each worker keeps its
// WorkerInfo under its name: what it serves (its queues and the builds of
// its plugins) and what it is doing. The scheduler reads it to know which
// plugin build a task would run with, a part of the task's cache key, and
// which workers are alive (docs/operations.md#watching-workers).
const WorkersBucket = "KILN_WORKERS"

// A worker writes its WorkerInfo on start, every WorkerInfoInterval, at
// once when it begins to drain, and at most every WorkerInfoMinGap when
// the tries it runs change. An entry not written for WorkerLostAfter (by
// the NATS server's clock, which stamps each write) belongs to a worker
// that is lost: dead, hung or cut off. The bucket forgets an entry
// WorkerForgetAfter after its last write, so a lost worker stays listed
// that long; a worker that stops gracefully deletes its entry.
const (
	WorkerInfoInterval = 5 * time.Second
	WorkerInfoMinGap   = time.Second
	WorkerLostAfter    = 3 * WorkerInfoInterval
	WorkerForgetAfter  = time.Hour
)

// legacyInfoInterval is how often workers that do not say their Interval
// write their entry.
const legacyInfoInterval = 30 * time.Second

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
// Workers older than the fields after Time leave them out.
type WorkerInfo struct {
	Name        string                 `json:"name"`
	Host        string                 `json:"host"`
	KilnVersion string                 `json:"kiln_version"`
	Queues      []string               `json:"queues"`
	Plugins     map[string]PluginBuild `json:"plugins"`
	// Time is when the worker wrote the entry, by its own clock; readers
	// judge liveness by the time the NATS server stored it instead.
	Time time.Time `json:"time"`
	// PID is the worker's process id on Host, and StartedAt when it
	// started.
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Slots is how many tries the worker runs at once; SlotsUsed how many
	// it runs now, Running which.
	Slots     int      `json:"slots,omitempty"`
	SlotsUsed int      `json:"slots_used"`
	Running   []TryKey `json:"running,omitempty"`
	// Draining is set once the worker stops gracefully: it pulls nothing
	// more and lets Running finish, then deletes the entry.
	Draining bool `json:"draining,omitempty"`
	// Interval is how often the worker writes the entry: WorkerInfoInterval.
	Interval time.Duration `json:"interval,omitempty"`
}

// LostAfter is how long after its last write the entry's worker is lost:
// three of its intervals, so that during an upgrade workers that write
// less often than this build's are not taken for lost between writes.
func (wi *WorkerInfo) LostAfter() time.Duration {
	if wi.Interval <= 0 {
		return 3 * legacyInfoInterval
	}
	return 3 * wi.Interval
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
// bounds it (-1: no bound but the server's), and each object is kept on
// replicas servers.
func ArtifactsConfig(maxBytes int64, replicas int) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      ArtifactsBucket,
		Description: "Kiln artifacts, named by their SHA-256 (docs/artifacts.md)",
		Storage:     jetstream.FileStorage,
		MaxBytes:    maxBytes,
		Replicas:    replicas,
	}
}

// WorkersConfig is the configuration of WorkersBucket, kept on replicas
// servers.
func WorkersConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      WorkersBucket,
		Description: "Kiln workers: what each serves and runs, by worker name",
		Storage:     jetstream.FileStorage,
		History:     1,
		TTL:         WorkerForgetAfter,
		Replicas:    replicas,
	}
}

// EnsureBuckets creates ArtifactsBucket and WorkersBucket, or sets the
// artifacts bucket's bound to maxBytes and both buckets' replicas, as
// EnsureStreams does for the streams. Idempotent; the scheduler calls it
// on start.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, artifactsMaxBytes int64, replicas int) error {
	if _, err := js.CreateOrUpdateObjectStore(ctx, ArtifactsConfig(artifactsMaxBytes, replicas)); err != nil {
		return fmt.Errorf("ensuring object store %s: %w", ArtifactsBucket, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, WorkersConfig(replicas)); err != nil {
		return fmt.Errorf("ensuring key-value bucket %s: %w", WorkersBucket, err)
	}
	return nil
}

// ErrArtifactsFull is what a worker reports when the artifact store has no
// room left for an artifact.
var ErrArtifactsFull = errors.New("the artifact store is full")
