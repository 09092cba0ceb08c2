package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:   "list",
		Usage:  "list every key version of the keyset",
		Flags:  []cli.Flag{jsonFlag()},
		Action: runList,
	}
}

func runList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		return printVersions(c.App.Writer, ks.Sorted(), now(c), c.Bool("json"))
	})
}
