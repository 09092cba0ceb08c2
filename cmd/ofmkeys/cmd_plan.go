package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show every upcoming rotation transition, when and why (changes nothing)",
		Flags: append(policyFlags(),
			stringFlag("at", "plan as if it were this time (RFC 3339)", ""),
			jsonFlag(),
		),
		Action: runPlan,
	}
}

// planView is plan's JSON.
type planView struct {
	At        time.Time           `json:"at"`
	Decisions []rotation.Decision `json:"decisions"`
	Steps     []rotation.Step     `json:"steps"`
}

func runPlan(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	at := now(c)
	if v := c.String("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return configError{fmt.Errorf("--at %q: want RFC 3339, e.g. 2027-06-01T00:00:00Z", v)}
		}
		at = t.UTC()
	}
	pol, err := policyFrom(c)
	if err != nil {
		return err
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		view := planView{At: at, Steps: rotation.Plan(ks, at, pol)}
		for _, p := range pki.Purposes {
			view.Decisions = append(view.Decisions, rotation.Decide(ks, p, at, pol))
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, view)
		}
		w := newTable(c)
		fmt.Fprintf(w, "Plan for dc_id %s at %s:\n\n", ks.DCID, at.Format(time.RFC3339))
		fmt.Fprintln(w, "PURPOSE\tDECISION\tDETAIL")
		for _, d := range view.Decisions {
			fmt.Fprintf(w, "%s\t%s\t%s\n", d.Purpose, d.Reason, d.Message)
		}
		w.Flush()
		fmt.Fprintln(c.App.Writer)
		printSteps(c, view.Steps)
		return nil
	})
}
