package worker

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/wire"
)

// tree writes files (path → content; a content starting with "-> " makes
// a symlink to the rest) under dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// readTree reads back what tree wrote, with "/" after empty folders and
// "*" after executables.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		case fi.IsDir():
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				out[rel+"/"] = ""
			}
		default:
			data, err := os.ReadFile(p)
			if fi.Mode().Perm()&0o111 != 0 {
				rel += "*"
			}
			out[rel] = string(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tarOf(t *testing.T, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeTar(&b, dir); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTarDeterministic: the same files make the same tar whatever their
// times, owners and modes other than the executable bit; the tar unpacks
// to the same files.
func TestTarDeterministic(t *testing.T) {
	files := map[string]string{"b.txt": "bee", "a/x.bin": "\x00\x01", "a/deep/y": "why", "a/link": "-> deep/y", "run.sh": "#!/bin/sh\n"}
	one, two := t.TempDir(), t.TempDir()
	tree(t, one, files)
	tree(t, two, files)
	for _, dir := range []string{one, two} {
		if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(two, "b.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(two, "a", "x.bin"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := tarOf(t, one)
	if !bytes.Equal(first, tarOf(t, two)) {
		t.Error("the same files, with other times and modes, made another tar")
	}

	tr := tar.NewReader(bytes.NewReader(first))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(epoch) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("entry %s: time %v, owner %d:%d %q:%q; want all zero", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
	}
	want := []string{"a/", "a/deep/", "a/deep/y", "a/link", "a/x.bin", "b.txt", "empty/", "run.sh"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}

	out := t.TempDir()
	if err := extractTar(bytes.NewReader(first), out); err != nil {
		t.Fatal(err)
	}
	wantTree := map[string]string{"b.txt": "bee", "a/x.bin": "\x00\x01", "a/deep/y": "why", "a/link": "-> deep/y", "run.sh*": "#!/bin/sh\n", "empty/": ""}
	if diff := cmp.Diff(wantTree, readTree(t, out)); diff != "" {
		t.Errorf("unpacked (-want +got):\n%s", diff)
	}
}

// entry is a tar entry for TestExtractRefuses.
type entry struct {
	name, link string
	typ        byte
}

func tarWith(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		if e.typ == tar.TypeReg {
			hdr.Size = 2
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte("hi"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExtractRefuses: entries that would land outside the folder, by their
// names or through symlinks, and entries of other types are refused, and
// nothing is written outside the folder.
func TestExtractRefuses(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		err     string
	}{
		{"dot dot", []entry{{name: "../x", typ: tar.TypeReg}}, `the tar's entry "../x" leads out of the folder`},
		{"dot dot inside", []entry{{name: "a/../../x", typ: tar.TypeReg}}, `the tar's entry "a/../../x" leads out of the folder`},
		{"absolute", []entry{{name: "/tmp/x", typ: tar.TypeReg}}, `the tar's entry "/tmp/x" leads out of the folder`},
		{"symlink up", []entry{{name: "l", link: "../x", typ: tar.TypeSymlink}}, "the tar's symlink l leads out of the folder, to ../x"},
		{"absolute symlink", []entry{{name: "l", link: "/etc", typ: tar.TypeSymlink}}, "the tar's symlink l leads out of the folder, to /etc"},
		{"symlink out through another", []entry{
			{name: "x", link: ".", typ: tar.TypeSymlink},
			{name: "y", link: "x/..", typ: tar.TypeSymlink},
		}, "the tar's symlink y leads out of the folder, to "},
		{"write through a symlink out", []entry{
			{name: "x", link: ".", typ: tar.TypeSymlink},
			{name: "y", link: "x/..", typ: tar.TypeSymlink},
			{name: "y/escaped", typ: tar.TypeReg},
		}, "escapes"},
		{"hard link", []entry{{name: "h", link: "f", typ: tar.TypeLink}}, `the tar's entry h is of type '1'; a folder artifact holds files, folders and symlinks only`},
		{"device", []entry{{name: "d", typ: tar.TypeChar}}, `the tar's entry d is of type '3'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "in")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractTar(bytes.NewReader(tarWith(t, tt.entries...)), dest)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("extractTar = %v, want an error with %q", err, tt.err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 1 {
				t.Errorf("something was written next to the folder: %v", ents)
			}
		})
	}
}

func TestWithInputs(t *testing.T) {
	ph := wire.InputPlaceholder
	with := map[string]any{
		"command": "train --in " + ph("features") + " --other " + ph("other"),
		"args":    []any{ph("model"), 3.0, true, nil, map[string]any{"deep": "x=" + ph("features")}},
	}
	env := map[string]string{"MODEL": ph("model"), "PLAIN": "p"}
	gotWith, gotEnv := withInputs(with, env, map[string]string{"features": "/w/inputs/features/f.csv", "model": "/w/inputs/model/m.pkl"})
	wantWith := map[string]any{
		"command": "train --in /w/inputs/features/f.csv --other " + ph("other"),
		"args":    []any{"/w/inputs/model/m.pkl", 3.0, true, nil, map[string]any{"deep": "x=/w/inputs/features/f.csv"}},
	}
	if diff := cmp.Diff(wantWith, gotWith); diff != "" {
		t.Errorf("with (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"MODEL": "/w/inputs/model/m.pkl", "PLAIN": "p"}, gotEnv); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}
