package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Logins that `kiln login` keeps: one file per server,
// os.UserConfigDir()/kiln/logins/<server>.json ($XDG_CONFIG_HOME or
// ~/.config on Linux), readable by its owner only, holding the token
// (docs/cli.md#kiln-login).

// savedLogin is what a login file holds.
type savedLogin struct {
	Server    string    `json:"server"`
	User      string    `json:"user"`
	TokenID   string    `json:"token_id"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"created_at"`
}

// loginsDir is the folder of the login files.
func loginsDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the folder for logins: %w", err)
	}
	return filepath.Join(dir, "kiln", "logins"), nil
}

// loginPath is the file of the login to server.
func loginPath(server *url.URL) (string, error) {
	dir, err := loginsDir()
	if err != nil {
		return "", err
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.TrimPrefix(strings.Replace(server.String(), "://", "_", 1), "_"))
	return filepath.Join(dir, name+".json"), nil
}

// loadLogin returns the saved login to server, or nil when there is none.
func loadLogin(server *url.URL) (*savedLogin, error) {
	path, err := loginPath(server)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the login to %s: %w", server, err)
	}
	var l savedLogin
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("reading the login to %s: %s is damaged (%v): run `kiln logout%s` and log in again", server, path, err, serverArg(server))
	}
	if l.Server != server.String() {
		return nil, nil // another server whose name maps to the same file
	}
	return &l, nil
}

// saveLogin writes a login, readable by its owner only.
func saveLogin(server *url.URL, l *savedLogin) (string, error) {
	path, err := loginPath(server)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	// Written to a new file and renamed, so that a reader never sees half
	// of it and the token never sits in a file others may read.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".login-*")
	if err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("saving the login: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("saving the login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("saving the login: %w", err)
	}
	return path, nil
}

// removeLogin deletes the login to server; none is no error.
func removeLogin(server *url.URL) error {
	path, err := loginPath(server)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the login: %w", err)
	}
	return nil
}

// serverArg is " --server URL" for a command to suggest, or "" when the
// command would reach server without it.
func serverArg(server *url.URL) string {
	if def, err := serverURL(""); err == nil && def.String() == server.String() {
		return ""
	}
	return " --server " + server.String()
}
