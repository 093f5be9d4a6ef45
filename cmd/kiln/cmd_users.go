package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// The users and tokens commands manage who may use the server. They call
// the API as an admin; with --data they open the store directly instead,
// which is how the first admin is made (no server needs to run, and none
// may: the store is locked while one does).

// authFlags are the flags of the users and tokens commands.
type authFlags struct {
	serverFlags
	data string
}

func (f *authFlags) register(cmd *cobra.Command) {
	f.serverFlags.register(cmd)
	cmd.Flags().StringVar(&f.data, "data", "", "open the store in this data folder directly instead of calling the server (which must be stopped)")
}

// openStore opens the store of --data, or returns nil when the command is
// to call the server.
func (f *authFlags) openStore(cmd *cobra.Command) (*store.Store, error) {
	if f.data == "" {
		return nil, nil
	}
	if cmd.Flags().Changed("server") || cmd.Flags().Changed("token") {
		return nil, usageError("--data opens the store directly; it takes no --server or --token")
	}
	st, err := openStore(f.data, "leave out --data to go through its API (as an admin, with --token or $KILN_TOKEN), or stop it first")
	if err == nil && st.AppliedSeq() > 0 {
		st.Close()
		return nil, usageError("the store in %s belongs to a server of a cluster (kiln server --ha): a change made in it directly would not reach the other servers. "+
			"Leave out --data to go through the API of any server (as an admin, with --token or $KILN_TOKEN); see docs/operations.md#cluster-mode", f.data)
	}
	return st, err
}

// storeOrServer does one admin operation: inStore on the store of --data,
// opened for it and closed after, or else viaServer through the API. The
// store's errors become exit errors (storeError); the client's already are.
func (f *authFlags) storeOrServer(cmd *cobra.Command, inStore func(*store.Store) error, viaServer func(*apiClient) error) error {
	st, err := f.openStore(cmd)
	if err != nil {
		return err
	}
	if st == nil {
		c, err := f.client()
		if err != nil {
			return err
		}
		return viaServer(c)
	}
	defer st.Close()
	if err := inStore(st); err != nil {
		return storeError(err)
	}
	return nil
}

// storeError turns an error of the store's user and token operations into
// an exitError: 2 for bad input, 1 otherwise.
func storeError(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return usageError("%v", err)
	}
	return &exitError{code: 1, msg: err.Error()}
}

// checkNameRole validates a name and role before anything is asked or
// sent, so that mistakes are usage errors (exit 2).
func checkNameRole(name, role string) error {
	if err := store.CheckName(name); err != nil {
		return usageError("NAME: %v", err)
	}
	if !store.ValidRole(role) {
		return usageError("--role %q: want one of %s", role, strings.Join(store.Roles, ", "))
	}
	return nil
}

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, list and delete the users who sign in to the web UI",
		Long: `Users sign in to the web UI with a name and a password; scripts and the
CLI use API tokens (kiln tokens). Roles: viewer reads everything; operator
also triggers, clears, pauses and backfills; admin also manages pools,
users and tokens. Once one user or token exists the server asks everyone
who they are; the first one must be an admin.

These commands call the server as an admin. With --data DIR they open the
store in DIR directly, which is how the first admin is made before the
server starts (it must not be running then).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newUsersAddCmd(), newUsersSetCmd(), newUsersListCmd(), newUsersDeleteCmd())
	return cmd
}

func newUsersAddCmd() *cobra.Command {
	var (
		f             authFlags
		role          string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --role ROLE [--password-stdin]",
		Short: "Add a user; the password is asked for, or read from standard input",
		Example: `  kiln users add ada --role admin --data /var/lib/kiln
  printf '%s\n' "$PASSWORD" | kiln users add vic --role viewer --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkNameRole(name, role); err != nil {
				return err
			}
			pw, err := readPassword(cmd, name, passwordStdin)
			if err != nil {
				return err
			}
			if err := store.CheckPasswordPolicy(pw); err != nil {
				return usageError("%v", err)
			}
			return f.storeOrServer(cmd,
				func(st *store.Store) error {
					if _, err := st.AddUser(cmd.Context(), name, role, pw, time.Now()); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "user %s (%s) added to %s\n", name, role, st.Path())
					return nil
				},
				func(c *apiClient) error {
					var u ui.User
					if _, err := c.do(cmd.Context(), "POST", apiPath("users"), nil, ui.AddUserRequest{Name: name, Role: role, Password: pw}, &u); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "user %s (%s) added\n", u.Name, u.Role)
					return nil
				})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input instead of asking")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4 << 10

// readPassword reads a new user's password: the first line of standard
// input with fromStdin, else asked twice on the terminal without echo.
func readPassword(cmd *cobra.Command, name string, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(in, maxPasswordInput)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", &exitError{code: 1, msg: fmt.Sprintf("reading the password from standard input: %v", err)}
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usageError("--password-stdin: standard input holds no password")
		}
		return pw, nil
	}
	pw, err := askPassword(cmd, fmt.Sprintf("Password for %s: ", name))
	if err != nil {
		return "", err
	}
	again, err := askPassword(cmd, "Once more: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", usageError("the two passwords differ")
	}
	return pw, nil
}

func newUsersSetCmd() *cobra.Command {
	var (
		f             authFlags
		role          string
		password      bool
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--role ROLE] [--password | --password-stdin]",
		Short: "Change a user's role or password; their sessions end",
		Example: `  kiln users set vic --role operator
  kiln users set ada --password --data /var/lib/kiln
  printf '%s\n' "$PASSWORD" | kiln users set vic --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var ch ui.UpdateUserRequest
			if cmd.Flags().Changed("role") {
				if !store.ValidRole(role) {
					return usageError("--role %q: want one of %s", role, strings.Join(store.Roles, ", "))
				}
				ch.Role = &role
			}
			if password || passwordStdin {
				pw, err := readPassword(cmd, name, passwordStdin)
				if err != nil {
					return err
				}
				if err := store.CheckPasswordPolicy(pw); err != nil {
					return usageError("%v", err)
				}
				ch.Password = &pw
			}
			if ch.Role == nil && ch.Password == nil {
				return usageError("nothing to change: give --role, --password or --password-stdin")
			}
			report := func(u string, r string) {
				what := "role " + r
				if ch.Password != nil {
					what += ", new password"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s changed (%s); their sessions ended\n", u, what)
			}
			return f.storeOrServer(cmd,
				func(st *store.Store) error {
					u, err := st.UpdateUser(cmd.Context(), name, store.UserChange{Role: ch.Role, Password: ch.Password})
					if err != nil {
						return err
					}
					report(u.Name, u.Role)
					return nil
				},
				func(c *apiClient) error {
					var u ui.User
					if _, err := c.do(cmd.Context(), "PATCH", apiPath("users", name), nil, ch, &u); err != nil {
						return err
					}
					report(u.Name, u.Role)
					return nil
				})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&role, "role", "", "the new role: viewer, operator or admin")
	cmd.Flags().BoolVar(&password, "password", false, "ask for a new password")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the new password from the first line of standard input")
	cmd.MarkFlagsMutuallyExclusive("password", "password-stdin")
	return cmd
}

func newUsersListCmd() *cobra.Command {
	var (
		f      authFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the users and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			users, err := listUsers(cmd, &f)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), users)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "USER\tROLE\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, fmtTime(&u.CreatedAt))
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func listUsers(cmd *cobra.Command, f *authFlags) ([]ui.User, error) {
	var users []ui.User
	err := f.storeOrServer(cmd,
		func(st *store.Store) error {
			list, err := st.Users()
			if err != nil {
				return err
			}
			users = make([]ui.User, len(list))
			for i, u := range list {
				users[i] = ui.User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt}
			}
			return nil
		},
		func(c *apiClient) error {
			_, err := c.do(cmd.Context(), "GET", apiPath("users"), nil, nil, &users)
			return err
		})
	return users, err
}

func newUsersDeleteCmd() *cobra.Command {
	var f authFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and end their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := f.storeOrServer(cmd,
				func(st *store.Store) error { return st.DeleteUser(cmd.Context(), args[0]) },
				func(c *apiClient) error {
					_, err := c.do(cmd.Context(), "DELETE", apiPath("users", args[0]), nil, nil, nil)
					return err
				})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// askPassword asks for a password on the terminal, without echo.
func askPassword(cmd *cobra.Command, prompt string) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError("no terminal to ask for the password on: pass it on standard input with --password-stdin")
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", &exitError{code: 1, msg: fmt.Sprintf("reading the password: %v", err)}
	}
	return string(b), nil
}
