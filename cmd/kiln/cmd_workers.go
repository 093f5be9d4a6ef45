package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newWorkersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the workers the server knows",
		Long: `Workers keep an entry in NATS that the server follows: their queues, their
slots and the tries they run. A worker that stopped writing it for 15 s
without stopping gracefully is lost (docs/operations.md#watching-workers).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newWorkersListCmd())
	return cmd
}

func newWorkersListCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the workers: state, slots, running tries, last heartbeat",
		Long: `List the workers by name: alive, draining (stopping gracefully, finishing
their running tries) or lost (no heartbeat for 15 s; listed for an hour).
Under the table, a warning names each queue whose tasks wait with no live
worker pulling it. With --json, only the workers are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var workers []ui.Worker
			if _, err := c.do(cmd.Context(), "GET", apiPath("workers"), nil, nil, &workers); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), workers)
			}
			var queues []ui.Queue
			if _, err := c.do(cmd.Context(), "GET", apiPath("queues"), nil, nil, &queues); err != nil {
				return err
			}
			now := time.Now()
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "WORKER\tSTATE\tQUEUES\tSLOTS\tRUNNING\tHEARTBEAT\tHOST\tVERSION")
			for _, w := range workers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", w.Name, workerState(&w), strings.Join(w.Queues, ","),
					w.SlotsUsed, w.Slots, runningTries(w.Running), ago(now, w.LastHeartbeat), w.Host, w.Version)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, q := range queues {
				if !q.NoWorker {
					continue
				}
				waiting := fmt.Sprintf("%d queued", q.Queued)
				if q.Scheduled > 0 {
					waiting += fmt.Sprintf(" and %d scheduled", q.Scheduled)
				}
				waiting += " task instance(s) wait"
				if q.Queued > 0 {
					waiting += fmt.Sprintf(" (the oldest for %s)", time.Duration(q.OldestWaitS*float64(time.Second)).Round(time.Second))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "kiln: queue %s: %s, and no live worker pulls it: start one with kiln worker --queue %s\n",
					q.Name, waiting, q.Name)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// workerState is a worker's state for the table: alive, draining or lost.
func workerState(w *ui.Worker) string {
	if w.Draining && w.State == "alive" {
		return "draining"
	}
	return w.State
}

// runningTries names tries as DAG/RUN/TASK#TRY, "-" for none.
func runningTries(tries []store.TryRef) string {
	if len(tries) == 0 {
		return "-"
	}
	names := make([]string, len(tries))
	for i, k := range tries {
		names[i] = fmt.Sprintf("%s/%s/%s#%d", k.DAGID, k.RunID, k.TaskID, k.Try)
	}
	return strings.Join(names, ",")
}

// ago says how long before now t was, to the second.
func ago(now, t time.Time) string {
	return max(now.Sub(t), 0).Round(time.Second).String() + " ago"
}
