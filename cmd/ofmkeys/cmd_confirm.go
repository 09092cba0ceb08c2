package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/rotation"
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
	return withEngine(c, "confirm", func(ctx context.Context, e *rotation.Engine) error {
		if err := e.Confirm(ctx, p, c.String("kid")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "The %s certificate %s is active. Tokens bound to the previous certificate must be fetched again.\n", p, c.String("kid"))
		return nil
	})
}
