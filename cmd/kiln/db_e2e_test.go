package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/store/storetest"
)

// filledData returns a data folder whose store holds storetest.Fill's
// runs, pool and user (ada).
func filledData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	storetest.Fill(t, filepath.Join(data, "kiln.db"))
	return data
}

// wantDamagedMessage checks that stderr is the message for a damaged
// store: the file, the problem, the restore steps, and no Go panic.
func wantDamagedMessage(t *testing.T, stderr, data, problem string) {
	t.Helper()
	path := filepath.Join(data, "kiln.db")
	for _, want := range []string{
		"kiln: store " + path + " is damaged",
		problem,
		"mv " + path + " " + path + ".damaged",
		"kiln db check --data " + data,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr shows a Go panic:\n%s", stderr)
	}
}

// TestDamagedStoreRefused damages a store with data in each way
// storetest knows and checks that kiln standalone, kiln server and kiln
// users --data refuse to start on it, exiting 1 with the file, the
// problem and how to restore a backup, and that kiln db check lists the
// problem and exits 1.
func TestDamagedStoreRefused(t *testing.T) {
	dags := t.TempDir()
	for _, d := range storetest.Damages {
		t.Run(d.Name, func(t *testing.T) {
			data := filledData(t)
			d.Do(t, filepath.Join(data, "kiln.db"))

			for _, args := range [][]string{
				{"standalone", "--data", data, "--dags", dags, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
				{"server", "--data", data, "--dags", dags, "--addr", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1"},
				{"users", "list", "--data", data},
			} {
				_, stderr, code := runKiln(t, args...)
				if code != 1 {
					t.Errorf("kiln %s: exit code %d, want 1 (stderr %q)", args[0], code, stderr)
				}
				wantDamagedMessage(t, stderr, data, d.Want)
			}

			stdout, stderr, code := runKiln(t, "db", "check", "--data", data)
			if code != 1 {
				t.Errorf("kiln db check: exit code %d, want 1 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stdout, "kiln.db: damaged") || !strings.Contains(stdout, d.Want) {
				t.Errorf("kiln db check: stdout does not list %q:\n%s", d.Want, stdout)
			}
			wantDamagedMessage(t, stderr, data, d.Want)
		})
	}
}

// TestDBBackupAndRestore backs up a store, damages the original and
// restores the backup exactly as the refusal message says; the restored
// store is sound and has its data.
func TestDBBackupAndRestore(t *testing.T) {
	data := filledData(t)
	path := filepath.Join(data, "kiln.db")
	backup := filepath.Join(t.TempDir(), "kiln-backup.db")

	stdout, stderr, code := runKiln(t, "db", "backup", "--data", data, "-o", backup)
	if code != 0 {
		t.Fatalf("kiln db backup: exit code %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, backup) {
		t.Errorf("kiln db backup: stdout %q does not name %s", stdout, backup)
	}
	stdout, stderr, code = runKiln(t, "db", "check", "--data", data)
	if code != 0 || !strings.Contains(stdout, "kiln.db: sound") {
		t.Fatalf("kiln db check of a sound store: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	storetest.Damages[len(storetest.Damages)-1].Do(t, path)
	if _, _, code := runKiln(t, "users", "list", "--data", data); code != 1 {
		t.Fatalf("kiln users list on the damaged store: exit code %d, want 1", code)
	}

	// The steps of the message: mv aside, cp the backup, check, start.
	if err := os.Rename(path, path+".damaged"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runKiln(t, "db", "check", "--data", data); code != 0 {
		t.Fatalf("kiln db check of the restored store: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runKiln(t, "users", "list", "--data", data)
	if code != 0 || !strings.Contains(stdout, "ada") {
		t.Errorf("kiln users list on the restored store: exit code %d, stdout %q, stderr %q; want ada", code, stdout, stderr)
	}
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, total, err := s.ListRuns(store.RunQuery{DAGID: storetest.DAG, Limit: 1}); err != nil || total != storetest.Runs {
		t.Errorf("restored store has %d runs (%v), want %d", total, err, storetest.Runs)
	}
}

// TestDBCommandsNeedTheServerStopped checks that kiln db check and backup
// say that a server holds the store, rather than wait or fail obscurely.
func TestDBCommandsNeedTheServerStopped(t *testing.T) {
	data := t.TempDir()
	s, err := store.Open(filepath.Join(data, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"db", "check", "--data", data}, "needs it stopped"},
		{[]string{"db", "backup", "--data", data, "-o", filepath.Join(t.TempDir(), "b.db")}, "leave out --data to ask it for the copy"},
	} {
		_, stderr, code := runKiln(t, tt.args...)
		if code != 1 || !strings.Contains(stderr, "locked by another process") || !strings.Contains(stderr, tt.want) {
			t.Errorf("kiln %s: exit code %d, stderr %q; want 1, that a server holds the store, and %q", strings.Join(tt.args[:2], " "), code, stderr, tt.want)
		}
	}
}

// TestDBBackupWhileServing backs up the store of a running kiln
// standalone through its API: the copy is sound and has the run that had
// just ended.
func TestDBBackupWhileServing(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"dags/small.yaml": smallDAG})
	s := startStandalone(t, filepath.Join(root, "dags"), filepath.Join(root, "data"))
	run := trigger(t, s, "small", true)
	backup := filepath.Join(t.TempDir(), "kiln.db")
	stdout, stderr, code := s.kiln(t, "db", "backup", backup)
	if code != 0 || !strings.Contains(stdout, backup) {
		t.Fatalf("kiln db backup %s: exit code %d, stdout %q, stderr %q", backup, code, stdout, stderr)
	}
	if _, stderr, code := s.kiln(t, "db", "backup", backup, "-o", backup+".2"); code != 2 || !strings.Contains(stderr, "give one") {
		t.Errorf("two backup files: exit code %d, stderr %q; want 2 and a usage error", code, stderr)
	}
	r, err := store.Check(t.Context(), backup)
	if err != nil || len(r.Problems) > 0 {
		t.Fatalf("Check of the backup: %v, problems %q", err, r.Problems)
	}
	st, err := store.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.GetRun("small", run); err != nil || got.State != store.RunSuccess {
		t.Errorf("the backup's run %s: %v, %v; want success", run, got, err)
	}
}

// TestDBCheckWithoutStore checks that kiln db check makes no store where
// there is none.
func TestDBCheckWithoutStore(t *testing.T) {
	data := t.TempDir()
	_, stderr, code := runKiln(t, "db", "check", "--data", data)
	if code != 1 || !strings.Contains(stderr, "no store at") {
		t.Errorf("exit code %d, stderr %q; want 1, no store", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "kiln.db")); !os.IsNotExist(err) {
		t.Errorf("kiln db check made %s/kiln.db", data)
	}
}
