// Package dockerimage builds small images on a Docker Engine through its
// API, from files in memory: the test images of the docker stage and the
// example image (make example-image). No registry is needed: the images
// start FROM scratch, with a static busybox for a shell and tools.
package dockerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/moby/moby/client"
)

// File is one file of an image.
type File struct {
	Data []byte
	Mode int64 // default 0o644
}

// BusyboxPath is where Debian's busybox-static package puts busybox.
const BusyboxPath = "/bin/busybox"

// busyboxTools are the busybox applets linked into the images' /bin.
var busyboxTools = []string{"sh", "echo", "cat", "sleep", "dd", "wget", "nc", "awk", "sed", "printf", "head", "tail", "wc", "sort", "ls", "mkdir", "rm", "cp", "true", "false", "env", "id", "date", "seq", "tr", "cut", "grep", "expr", "test", "["}

// Busybox reads the static busybox binary at path: the base of every
// image here, since FROM scratch has nothing else. A dynamically linked
// busybox would not run there, so it is refused with what to install.
func Busybox(path string) ([]byte, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("a static busybox is needed at %s (Debian: apt-get install -y busybox-static): %w", path, err)
	}
	static := !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if !static {
		return nil, fmt.Errorf("%s is linked dynamically and would not run in an image FROM scratch: install a static one (Debian: apt-get install -y busybox-static)", path)
	}
	return os.ReadFile(path)
}

// BusyboxFiles returns busybox as /bin/busybox with its tools linked to it
// in /bin, and an /etc/passwd with root and nobody.
func BusyboxFiles(busybox []byte) map[string]File {
	return map[string]File{
		"bin/busybox": {Data: busybox, Mode: 0o755},
		"etc/passwd":  {Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		"etc/group":   {Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
}

// Build builds the image tag from files with a Dockerfile that copies
// them to / and links busybox's tools (when /bin/busybox is among them),
// then extra lines; it returns the image's ID. The build's own output is
// read for its errors.
func Build(ctx context.Context, cli *client.Client, tag string, files map[string]File, extra ...string) (string, error) {
	dockerfile := "FROM scratch\nCOPY . /\n"
	if _, ok := files["bin/busybox"]; ok {
		// One RUN for all the links: busybox's sh runs them.
		var script strings.Builder
		for _, tool := range busyboxTools {
			fmt.Fprintf(&script, "/bin/busybox ln -s busybox /bin/%s && ", tool)
		}
		script.WriteString("true")
		q, _ := json.Marshal([]string{"/bin/busybox", "sh", "-c", script.String()})
		dockerfile += "RUN " + string(q) + "\n"
	}
	dockerfile += strings.Join(extra, "\n") + "\n"

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", []byte(dockerfile), 0); err != nil {
		return "", err
	}
	if err := add(".dockerignore", []byte("Dockerfile\n.dockerignore\n"), 0); err != nil {
		return "", err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := add(name, files[name].Data, files[name].Mode); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}

	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := buildErrors(res.Body); err != nil {
		return "", fmt.Errorf("building image %s: %w", tag, err)
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("inspecting the image just built, %s: %w", tag, err)
	}
	return img.ID, nil
}

// buildErrors reads a build's JSON messages to the end and returns the
// first error among them.
func buildErrors(r io.Reader) error {
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		log.WriteString(m.Stream)
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, log.String())
		}
	}
}
