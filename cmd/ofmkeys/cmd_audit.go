package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:   "audit",
		Usage:  "show the keyset's event log: who did what, when, and why",
		Flags:  []cli.Flag{jsonFlag()},
		Action: runAudit,
	}
}

func runAudit(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		if c.Bool("json") {
			return writeJSON(c.App.Writer, append([]keyset.AuditEvent{}, ks.Audit...))
		}
		w := newTable(c)
		fmt.Fprintln(w, "SEQ\tAT\tACTOR\tACTION\tPURPOSE\tKID\tWHY")
		for _, e := range ks.Audit {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Actor, e.Action, e.Purpose, e.Kid, e.Reason)
		}
		return w.Flush()
	})
}
