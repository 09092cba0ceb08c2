package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func confirmCommand() *cli.Command {
	return &cli.Command{
		Name:  "confirm",
		Usage: "switch to a new transport certificate once PayNet has registered it",
		Flags: []cli.Flag{
			purposeFlag(),
			&cli.StringFlag{Name: "kid", Usage: "the kid of the registered certificate (ofmkeys plan shows it)", Required: true},
		},
		Action: runConfirm,
	}
}

func runConfirm(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		e, err := newEngine(c, s, ks.DCID, "confirm")
		if err != nil {
			return err
		}
		defer e.Release(context.WithoutCancel(ctx))
		if err := e.Confirm(ctx, p, c.String("kid")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "The %s certificate %s is active. Tokens bound to the previous certificate must be fetched again.\n", p, c.String("kid"))
		return nil
	})
}
