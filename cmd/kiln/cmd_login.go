package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kilnhq/kiln/ui"
)

func newLoginCmd() *cobra.Command {
	var (
		server        string
		name          string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "login [--server URL] [--user NAME] [--password-stdin]",
		Short: "Log in to a server as a user; later commands use the saved token",
		Long: `Log in to a server with a user's name and password (kiln users add makes
users). The server gives a token that acts as the user, with the user's role;
it is saved in the user's config folder (on Linux
~/.config/kiln/logins/, or under $XDG_CONFIG_HOME), readable only by you,
one file per server. Every command that talks to that server then uses it,
unless --token or $KILN_TOKEN gives another. kiln logout gives it back.

The name is asked for unless --user gives it, and the password is asked
for without echo unless --password-stdin reads it from standard input.`,
		Example: `  kiln login
  kiln login --server https://kiln.example.com --user ada
  printf '%s\n' "$PASSWORD" | kiln login --user ci-bot --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			if name == "" {
				if passwordStdin {
					return usageError("--password-stdin needs --user NAME")
				}
				if name, err = askLine(cmd, fmt.Sprintf("User name for %s: ", c.base)); err != nil {
					return err
				}
			}
			var pw string
			if passwordStdin {
				pw, err = readPassword(cmd, name, true)
			} else {
				pw, err = askPassword(cmd, fmt.Sprintf("Password for %s: ", name))
			}
			if err != nil {
				return err
			}
			old, err := loadLogin(c.base)
			if err != nil {
				old = nil // replaced below
			}
			var nt ui.NewToken
			req := ui.LoginRequest{Name: name, Password: pw, TokenName: loginTokenName()}
			if _, err := c.do(cmd.Context(), http.MethodPost, apiPath("login"), nil, req, &nt); err != nil {
				return err
			}
			path, err := saveLogin(c.base, &savedLogin{Server: c.base.String(), User: nt.User, TokenID: nt.ID, Token: nt.Secret, CreatedAt: time.Now().UTC()})
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if old != nil && old.TokenID != nt.ID {
				// The login this one replaces is given back; it may be
				// gone already, which is as good.
				c.token = old.Token
				_, _ = c.do(cmd.Context(), http.MethodPost, apiPath("logout"), nil, nil, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (%s); the token is saved in %s\n", c.base, nt.User, nt.Role, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Kiln server URL (default $KILN_SERVER, else "+defaultServerURL+")")
	cmd.Flags().StringVar(&name, "user", "", "the user name (asked for when not given)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input instead of asking")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "logout [--server URL]",
		Short: "Log out of a server: its saved token is revoked and deleted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			l, err := loadLogin(c.base)
			if err != nil {
				// A damaged file is removed all the same.
				if err := removeLogin(c.base); err != nil {
					return &exitError{code: 1, msg: err.Error()}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", c.base)
				return nil
			}
			if l == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "not logged in to %s\n", c.base)
				return nil
			}
			c.token = l.Token
			_, revokeErr := c.do(cmd.Context(), http.MethodPost, apiPath("logout"), nil, nil, nil)
			if err := removeLogin(c.base); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", c.base)
			if revokeErr != nil {
				// The server may be down, or the token revoked already;
				// the saved copy is gone either way.
				fmt.Fprintf(cmd.ErrOrStderr(), "kiln: the server did not take the token back (%v); an admin can revoke it with `kiln tokens revoke %s`\n", revokeErr, l.TokenID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Kiln server URL (default $KILN_SERVER, else "+defaultServerURL+")")
	return cmd
}

// loginTokenName names a login's token in `kiln tokens list`: who logged
// in from where, as a token name may be written.
func loginTokenName() string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.@+-", r) {
			return r
		}
		return '-'
	}, cliUser())
	name = strings.TrimLeft(name, "_.@+-")
	if len(name) > 64 {
		name = name[:64]
	}
	if name == "" {
		return "login"
	}
	return name
}

// askLine asks for a line on the terminal.
func askLine(cmd *cobra.Command, prompt string) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError("no terminal to ask for the user name on: give it with --user NAME")
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	line, err := bufio.NewReader(io.LimitReader(f, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", &exitError{code: 1, msg: fmt.Sprintf("reading the user name: %v", err)}
	}
	name := strings.TrimSpace(line)
	if name == "" {
		return "", usageError("no user name given")
	}
	return name, nil
}
