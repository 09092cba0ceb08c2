package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// maxInput bounds what sign, verify, encrypt and decrypt read.
const maxInput = 4 << 20

// readInput reads standard input, or the --in file when given.
func readInput(c *cli.Context) ([]byte, error) {
	if c.IsSet("in") {
		return readFileFlagLimit(c, "in", maxInput)
	}
	b, err := io.ReadAll(io.LimitReader(c.App.Reader, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("standard input is larger than %d bytes", maxInput)
	}
	return b, nil
}

func inFlag() cli.Flag {
	return &cli.StringFlag{Name: "in", Usage: "read this file instead of standard input"}
}
