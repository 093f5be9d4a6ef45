package natsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Seed files of a standalone installation, in its DATA/nats folder.
const (
	SchedulerSeedFile = "scheduler.nk"
	WorkerSeedFile    = "worker.nk"
)

// Standalone is the NATS identities of a `kiln standalone`: an NKey for its
// scheduler and one for its workers, in-process or joining it with
// `kiln worker --nats-nkey`. NKeys rather than passwords: a client proves it
// holds the seed by signing a challenge of the server's, so the secret
// never crosses the connection, and the server keeps public keys only.
type Standalone struct {
	// SchedulerSeed and WorkerSeed are the seed files' paths.
	SchedulerSeed, WorkerSeed string

	scheduler, worker string // public keys
}

// LoadStandalone reads the seed files in dir, creating each one that is
// missing with a new key, so that a restart keeps the identities that
// workers were given. The files are readable by their owner only; one that
// others may read is refused, since whoever reads it can act as its role.
func LoadStandalone(dir string) (*Standalone, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	s := &Standalone{
		SchedulerSeed: filepath.Join(dir, SchedulerSeedFile),
		WorkerSeed:    filepath.Join(dir, WorkerSeedFile),
	}
	var err error
	if s.scheduler, err = loadOrCreateSeed(s.SchedulerSeed); err != nil {
		return nil, err
	}
	if s.worker, err = loadOrCreateSeed(s.WorkerSeed); err != nil {
		return nil, err
	}
	return s, nil
}

// Users are the users of the embedded server: the scheduler, and the
// workers, who may use any worker name.
func (s *Standalone) Users() []*server.NkeyUser {
	return []*server.NkeyUser{
		{Nkey: s.scheduler, Permissions: SchedulerPermissions()},
		{Nkey: s.worker, Permissions: WorkerPermissions(AnyWorker)},
	}
}

// loadOrCreateSeed returns the public key of the user seed in path,
// creating the file with a new seed if there is none.
func loadOrCreateSeed(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSeed(path)
	}
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("NATS credentials %s: readable by others (mode %v); whoever reads it can act as its role: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		return "", fmt.Errorf("NATS credentials %s: %w", path, err)
	}
	defer kp.Wipe()
	return kp.PublicKey()
}

func createSeed(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	// Written aside, then linked into place: a crash leaves no half-written
	// seed, and of two processes starting on one data folder one key wins
	// while the other fails, as it would on the store's lock.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("NATS credentials: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintf(f, "%s\n", seed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("NATS credentials: writing %s: %w", path, err)
	}
	return kp.PublicKey()
}
