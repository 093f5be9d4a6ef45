package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/ui"
)

func newPoolsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "List, size and delete pools of task slots",
		Long: `Pools cap how many task instances naming them run at once. default_pool
always exists (128 slots unless set).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newPoolsListCmd(), newPoolsSetCmd(), newPoolsDeleteCmd())
	return cmd
}

func newPoolsListCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pools and their slots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var pools []ui.Pool
			if _, err := c.do(cmd.Context(), "GET", apiPath("pools"), nil, nil, &pools); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), pools)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "POOL\tSLOTS")
			for _, p := range pools {
				fmt.Fprintf(tw, "%s\t%d\n", p.Name, p.Slots)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newPoolsSetCmd() *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "set NAME SLOTS",
		Short: "Create a pool or change its number of slots",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			slots, err := strconv.Atoi(args[1])
			if err != nil || slots < 0 {
				return usageError("SLOTS %q: want a whole number, 0 or more", args[1])
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var p ui.Pool
			if _, err := c.do(cmd.Context(), "PUT", apiPath("pools", args[0]), nil, ui.SetPoolRequest{Slots: &slots}, &p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pool %s has %d slot(s)\n", p.Name, p.Slots)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func newPoolsDeleteCmd() *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a pool",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), "DELETE", apiPath("pools", args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pool %s deleted\n", args[0])
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}
