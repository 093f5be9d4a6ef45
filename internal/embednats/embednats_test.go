package embednats

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/kilnhq/kiln/internal/diskfull"
	"github.com/kilnhq/kiln/internal/tlstest"
	"github.com/kilnhq/kiln/internal/tmpfs"
)

// connectJS connects to s, until the test ends, and returns its
// JetStream.
func connectJS(t *testing.T, s *Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestStartRandomPortJetStream(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Options{StoreDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(s.ClientURL(), ":4222") {
		t.Errorf("ClientURL = %q, want a random loopback port", s.ClientURL())
	}

	js := connectJS(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("creating a stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hi")); err != nil {
		t.Fatalf("publishing: %v", err)
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		s, err := Start(Options{StoreDir: dir, Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		js := connectJS(t, s)
		if i == 0 {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "t.x", []byte("hi")); err != nil {
				t.Fatal(err)
			}
		} else {
			st, err := js.Stream(ctx, "T")
			if err != nil {
				t.Fatalf("stream after restart: %v", err)
			}
			if n := st.CachedInfo().State.Msgs; n != 1 {
				t.Errorf("messages after restart = %d, want 1", n)
			}
		}
		js.Conn().Close()
		s.Shutdown()
	}
}

func TestAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(Options{StoreDir: t.TempDir(), Listen: l.Addr().String(), ReadyTimeout: 3 * time.Second})
	if err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error = %q, want it to say the address is in use", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{StoreDir: t.TempDir(), Listen: "nope"},
		{StoreDir: t.TempDir(), Listen: "127.0.0.1:99999"},
	} {
		if s, err := Start(o); err == nil {
			s.Shutdown()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

// TestNkeysAndTLS: with users and TLS, a client needs both a key and
// the CA, except over an in-process connection, which needs the key only.
func TestNkeysAndTLS(t *testing.T) {
	dir := t.TempDir()
	certs := tlstest.Write(t, dir)
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certs.Cert, KeyFile: certs.Key})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	s, err := Start(Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0",
		Nkeys: []*server.NkeyUser{{Nkey: pub}}, TLS: tlsConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nkey, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()

	if nc, err := nats.Connect("nats://"+addr, nkey); err == nil {
		nc.Close()
		t.Error("a client without TLS got in")
	}
	if nc, err := nats.Connect("tls://"+addr, nats.RootCAs(certs.CA)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("a client without a key: %v, want an authorization error", err)
	}
	for name, c := range map[string]struct {
		url  string
		opts []nats.Option
	}{
		"over TLS":   {s.ClientURL(), []nats.Option{nkey, nats.RootCAs(certs.CA)}},
		"in-process": {"nats://" + addr, []nats.Option{nkey, nats.InProcessServer(s.NATS())}},
	} {
		nc, err := nats.Connect(c.url, c.opts...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := nc.Flush(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		nc.Close()
	}
}

// TestDiskFull fills the disk under JetStream's store and checks that
// DiskFull tells of it.
func TestDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 2<<20)
	s, err := Start(Options{StoreDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	js := connectJS(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	// JetStream sized its limits by the room it found at start; other
	// files fill the disk, as the store and the logs do in Kiln's data
	// folder.
	tmpfs.Fill(t, filepath.Join(dir, "ballast"), -1)
	msg := make([]byte, 64<<10)
	for {
		select {
		case err := <-s.DiskFull():
			if !diskfull.Is(err) || !strings.Contains(err.Error(), dir) {
				t.Errorf("DiskFull: %v, want ENOSPC on a file in %s", err, dir)
			}
			return
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(pctx, "t.x", msg)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("no DiskFull after filling the disk (last publish: %v)", err)
		}
	}
}
