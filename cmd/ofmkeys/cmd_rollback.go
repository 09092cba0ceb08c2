package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/rotation"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:   "rollback",
		Usage:  "re-activate the previous key of a purpose while it is still retained",
		Flags:  []cli.Flag{purposeFlag()},
		Action: runRollback,
	}
}

func runRollback(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	return withEngine(c, "rollback", func(ctx context.Context, e *rotation.Engine) error {
		kid, err := e.Rollback(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "The previous %s key %s is active again.\n", p, kid)
		return nil
	})
}
