package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/rotation"
)

func rotateCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate",
		Usage: "start a rotation of one purpose now (stage and publish); activation follows the propagation window",
		Description: `Makes the purpose's next key and publishes it (transport: asks for registration), so it
works with no daemon running; ` + "`ofmkeys reconcile`" + ` or the daemon activates it once it has been
published for the propagation window. --emergency is for a compromised key: the new key is
activated and the old one withdrawn at once.`,
		Flags: append(policyFlags(),
			purposeFlag(),
			boolFlag("dry-run", "show the steps without making them"),
			boolFlag("emergency", "compromised key: activate the new key and withdraw the old one at once"),
			jsonFlag(),
		),
		Action: runRotate,
	}
}

func runRotate(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	return withEngine(c, "rotate", func(ctx context.Context, e *rotation.Engine) error {
		if c.Bool("emergency") && !c.Bool("dry-run") {
			fmt.Fprintf(c.App.ErrWriter, "ofmkeys: WARNING: emergency rotation of the %s key: peers that cached the JWKS (up to 15 minutes) will reject what the new key signs until their cache expires.\n", p)
		}
		steps, err := e.Rotate(ctx, p, rotation.RotateOptions{Emergency: c.Bool("emergency"), DryRun: c.Bool("dry-run")})
		if c.Bool("json") {
			if jerr := writeJSON(c.App.Writer, steps); jerr != nil {
				return jerr
			}
		} else {
			printSteps(c, steps)
		}
		return err
	})
}
