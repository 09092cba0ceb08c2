package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/rotation"
)

func reconcileCommand() *cli.Command {
	return &cli.Command{
		Name:   "reconcile",
		Usage:  "make every rotation transition that is due now, once (for cron or CI instead of the daemon)",
		Flags:  append(policyFlags(), jsonFlag()),
		Action: runReconcile,
	}
}

func runReconcile(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return withEngine(c, "reconcile", func(ctx context.Context, e *rotation.Engine) error {
		res, err := e.Reconcile(ctx)
		if c.Bool("json") {
			if jerr := writeJSON(c.App.Writer, res); jerr != nil {
				return jerr
			}
		} else {
			printSteps(c, res.Done)
			if len(res.Done) == 0 {
				fmt.Fprintln(c.App.Writer, "Nothing is due.")
			}
			if !res.Next.IsZero() {
				fmt.Fprintf(c.App.Writer, "Next transition due %s.\n", res.Next.Format(time.RFC3339))
			}
		}
		if err != nil {
			return err
		}
		if len(res.Failed) > 0 {
			var msgs []string
			for p, m := range res.Failed {
				msgs = append(msgs, fmt.Sprintf("%s: %s", p, m))
			}
			sort.Strings(msgs)
			return fmt.Errorf("rotation failed for %d purpose(s): %v", len(msgs), msgs)
		}
		return nil
	})
}
