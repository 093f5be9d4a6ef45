package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

// defaultDAGsFolder is the DAGs folder of every command that reads DAG
// files when neither --dags nor $KILN_DAGS names one
// (docs/cli.md#the-dags-folder).
const defaultDAGsFolder = "dags"

// dagsFolder is the --dags flag that standalone, server, dags validate
// and dags next share, so that they all read the same folder.
type dagsFolder struct {
	dir   string
	flags *pflag.FlagSet
}

func (d *dagsFolder) register(fs *pflag.FlagSet, what string) {
	fs.StringVar(&d.dir, "dags", "", what+" (default $KILN_DAGS, else ./"+defaultDAGsFolder+")")
	d.flags = fs
}

// path returns the folder and where it was named, for messages:
// "--dags DIR", "$KILN_DAGS=DIR" or "the default, ./dags".
func (d *dagsFolder) path() (dir, from string) {
	if d.flags.Changed("dags") {
		return d.dir, "--dags " + d.dir
	}
	if env := os.Getenv("KILN_DAGS"); env != "" {
		return env, "$KILN_DAGS=" + env
	}
	return defaultDAGsFolder, "the default, ./" + defaultDAGsFolder
}

// folder returns the folder, or a usage error that names the folder tried,
// where that name came from and how to name another, when it is not a
// folder.
func (d *dagsFolder) folder() (string, error) {
	dir, from := d.path()
	shown := dir
	if abs, err := filepath.Abs(dir); err == nil {
		shown = abs
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", usageError("DAGs folder %s (%s) does not exist: create it, or %s", shown, from, howToNameFolder)
	case err != nil:
		return "", usageError("DAGs folder %s (%s): %v", shown, from, unwrapPathError(err))
	case !st.IsDir():
		return "", usageError("DAGs folder %s (%s) is not a folder: %s", shown, from, howToNameFolder)
	}
	return dir, nil
}

const howToNameFolder = "name yours with --dags DIR or $KILN_DAGS (the bundled examples: --dags examples/dags)"
