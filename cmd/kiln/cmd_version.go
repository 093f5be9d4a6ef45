package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, the commit it was built from and its Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi := buildinfo.Get()
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), bi)
			}
			fmt.Fprintln(cmd.OutOrStdout(), bi)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print a JSON object: "version", "revision", "modified", "go_version"`)
	return cmd
}
