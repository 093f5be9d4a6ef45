package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke API tokens",
		Long: `API tokens let scripts and the CLI call the server: send one with --token
or $KILN_TOKEN. Each has a name (what it is for) and a role: viewer,
operator or admin (see kiln users). A token is shown once, when it is
created; the server keeps only a hash of it.

These commands call the server as an admin. With --data DIR they open the
store in DIR directly, which is how the first admin token is made before
the server starts (it must not be running then).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newTokensCreateCmd(), newTokensListCmd(), newTokensRevokeCmd())
	return cmd
}

func newTokensCreateCmd() *cobra.Command {
	var (
		f      authFlags
		name   string
		role   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Create an API token and print it, this once",
		Example: `  export KILN_TOKEN=$(kiln tokens create --name ci --role operator)
  kiln tokens create --name bootstrap --role admin --data /var/lib/kiln`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkNameRole(name, role); err != nil {
				return err
			}
			nt, err := createToken(cmd, &f, name, role)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), nt)
			}
			// The token alone on stdout, so that $(kiln tokens create ...)
			// captures it; the rest is for the person.
			fmt.Fprintln(cmd.OutOrStdout(), nt.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "kiln: token %s (%s, %s) created. Store it now: it is not shown again.\n", nt.ID, nt.Name, nt.Role)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "what the token is for, such as ci (required)")
	cmd.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object, the token in \"token\"")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func createToken(cmd *cobra.Command, f *authFlags, name, role string) (*ui.NewToken, error) {
	nt := new(ui.NewToken)
	err := f.storeOrServer(cmd,
		func(st *store.Store) error {
			t, secret, err := st.CreateToken(cmd.Context(), name, role, time.Now())
			if err != nil {
				return err
			}
			*nt = ui.NewToken{Token: tokenBody(t), Secret: secret}
			return nil
		},
		func(c *apiClient) error {
			_, err := c.do(cmd.Context(), "POST", apiPath("tokens"), nil, ui.CreateTokenRequest{Name: name, Role: role}, nt)
			return err
		})
	return nt, err
}

func tokenBody(t *store.Token) ui.Token {
	return ui.Token{ID: t.ID, Name: t.Name, Role: t.Role, User: t.User, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

func newTokensListCmd() *cobra.Command {
	var (
		f      authFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API tokens (never the tokens themselves); USER names the user a login's token acts as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tokens, err := listTokens(cmd, &f)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), tokens)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tUSER\tCREATED\tLAST USED")
			for _, t := range tokens {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, dashIfEmpty(t.User), fmtTime(&t.CreatedAt), fmtTime(t.LastUsedAt))
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func listTokens(cmd *cobra.Command, f *authFlags) ([]ui.Token, error) {
	var tokens []ui.Token
	err := f.storeOrServer(cmd,
		func(st *store.Store) error {
			list, err := st.Tokens()
			if err != nil {
				return err
			}
			tokens = make([]ui.Token, len(list))
			for i, t := range list {
				tokens[i] = tokenBody(t)
			}
			return nil
		},
		func(c *apiClient) error {
			_, err := c.do(cmd.Context(), "GET", apiPath("tokens"), nil, nil, &tokens)
			return err
		})
	return tokens, err
}

func newTokensRevokeCmd() *cobra.Command {
	var f authFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token; requests with it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := f.storeOrServer(cmd,
				func(st *store.Store) error { return st.DeleteToken(cmd.Context(), args[0]) },
				func(c *apiClient) error {
					_, err := c.do(cmd.Context(), "DELETE", apiPath("tokens", args[0]), nil, nil, nil)
					return err
				})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
