package worker

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// A folder artifact is stored as a tar of its content. The tar is
// deterministic, so that the same files make the same object, and so the
// same SHA-256, on any host and at any time: entries in lexical order,
// modification times, owners and owner names zeroed, modes reduced to
// 0755 for folders and executables, 0644 for other files.

// epoch is the modification time of every entry of an artifact's tar.
var epoch = time.Unix(0, 0)

// writeTar writes the tar of the folder dir to out: its files, folders and
// symlinks, entry names relative to dir. It reads through an os.Root, so
// nothing outside dir is read, and it refuses a symlink that leads out of
// dir (or nowhere) and files that are neither regular files, folders nor
// symlinks.
func writeTar(out io.Writer, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(out)
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		hdr := &tar.Header{Name: name, ModTime: epoch}
		switch t := d.Type(); {
		case t.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case t&fs.ModeSymlink != 0:
			target, err := symlinkIn(root, dir, name)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case t.IsRegular():
			return writeTarFile(tw, root, hdr)
		default:
			return fmt.Errorf("%s is a %s; a folder artifact holds files, folders and symlinks only", name, kindOf(t))
		}
		return tw.WriteHeader(hdr)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, root *os.Root, hdr *tar.Header) error {
	f, err := root.Open(hdr.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
	if fi.Mode().Perm()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		if errors.Is(err, tar.ErrWriteTooLong) {
			return fmt.Errorf("%s grew while it was being stored", hdr.Name)
		}
		return err
	}
	return nil
}

// symlinkIn returns the target of the symlink name in the folder dir
// (opened as root), refusing one that is absolute, leads out of dir or to
// nothing: in another working directory it would lead elsewhere.
func symlinkIn(root *os.Root, dir, name string) (string, error) {
	target, err := root.Readlink(name)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(target) {
		return "", fmt.Errorf("symlink %s leads to the absolute path %s; a folder artifact may hold relative symlinks within it only", name, target)
	}
	if err := within(dir, "the folder", filepath.Join(dir, name)); err != nil {
		return "", fmt.Errorf("symlink %s (to %s): %w", name, target, err)
	}
	return target, nil
}

// within checks that the path p, symlinks followed, exists and is in the
// folder dir or is dir; what names dir in the error.
func within(dir, what, p string) error {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("leads to nothing")
	}
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("leads out of %s, to %s", what, real)
	}
	return nil
}

func kindOf(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// extractTar unpacks the tar read from r into the folder dest, which
// exists and is empty. It writes through an os.Root, so no entry lands
// outside dest, and refuses entries whose names leave dest (.., absolute
// paths), symlinks that lead out of dest once all are in place, and entry
// types other than files, folders and symlinks. It reads r up to the end
// of the tar only.
func extractTar(r io.Reader, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var links []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar: %w", err)
		}
		name := path.Clean(hdr.Name)
		if name == "." && hdr.Typeflag == tar.TypeDir {
			continue
		}
		local := filepath.FromSlash(name)
		if strings.HasPrefix(hdr.Name, "/") || !filepath.IsLocal(local) {
			return fmt.Errorf("the tar's entry %q leads out of the folder", hdr.Name)
		}
		if dir := filepath.Dir(local); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(local, 0o755)
		case tar.TypeReg:
			err = extractFile(root, local, hdr, tr)
		case tar.TypeSymlink:
			if filepath.IsAbs(hdr.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(local), hdr.Linkname)) {
				return fmt.Errorf("the tar's symlink %s leads out of the folder, to %s", name, hdr.Linkname)
			}
			err = root.Symlink(hdr.Linkname, local)
			links = append(links, local)
		default:
			return fmt.Errorf("the tar's entry %s is of type %q; a folder artifact holds files, folders and symlinks only", name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
	// A symlink that looks local may still lead out through another one
	// (x/.. with x a link to .); only now that all are there can each be
	// followed to its end.
	for _, l := range links {
		if err := within(dest, "the folder", filepath.Join(dest, l)); err != nil {
			return fmt.Errorf("the tar's symlink %s %w", filepath.ToSlash(l), err)
		}
	}
	return nil
}

func extractFile(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	mode := os.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
