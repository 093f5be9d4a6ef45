package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/rundiff"
)

func newRunsDiffCmd() *cobra.Command {
	var (
		sf         serverFlags
		dagA, dagB string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "diff RUN_A RUN_B --dag DAG [--dag-b DAG_B]",
		Short: "Show what differs between two runs",
		Long: `Show what differs between two runs, in this order: the DAG version (with a
unified diff of the source), the params, and per task the rendered with,
the plugin version and binary hash, the environment key, the upstream
outputs read, then what came of it: outputs written, state, duration.
RUN_B is a run of --dag-b, by default of the same DAG.

Exits 0 when the two ran the same thing, 1 when anything that affects
results differs (outputs, states and durations alone do not), 2 on bad
usage or an unknown run, like diff(1).`,
		Example: `  kiln runs diff scheduled__2026-03-01T03:00:00Z scheduled__2026-03-02T03:00:00Z --dag ml_pipeline
  kiln runs diff manual__2026-03-02T10:00:00Z manual__2026-03-02T11:00:00Z --dag churn --dag-b churn_v2 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dagA == "" {
				return usageError("--dag: required, the DAG of RUN_A")
			}
			if args[0] == "" || args[1] == "" {
				return usageError("RUN_A and RUN_B: run ids, not empty")
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			q := url.Values{"run_b": {args[1]}}
			if dagB != "" {
				q.Set("dag_b", dagB)
			}
			var d rundiff.Diff
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags", dagA, "runs", args[0], "diff"), q, nil, &d); err != nil {
				var ee *exitError
				if errors.As(err, &ee) && ee.status == http.StatusNotFound {
					ee.code = 2 // an unknown run is a bad argument here
				}
				return err
			}
			if asJSON {
				if err := printJSONValue(cmd.OutOrStdout(), d); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), d.Text())
			}
			if !d.Same {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagA, "dag", "", "the DAG of RUN_A (required)")
	f.StringVar(&dagB, "dag-b", "", "the DAG of RUN_B (default: --dag)")
	f.BoolVar(&asJSON, "json", false, "print a JSON object (docs/reproducibility.md#comparing-two-runs)")
	return cmd
}
