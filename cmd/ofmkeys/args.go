package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves a command's flags ahead of its arguments, so that
// `ofmkeys show signing --json` works: urfave/cli v2 stops reading flags at
// the first argument. It uses the command's own flag definitions to know
// which flags take a value; "--" ends the flags as usual.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Find the command, and a subcommand right after it (jwks lint).
	find := func(cmds []*cli.Command, name string) *cli.Command {
		for _, c := range cmds {
			if c.HasName(name) {
				return c
			}
		}
		return nil
	}
	cmd := find(app.Commands, args[1])
	if cmd == nil {
		return args
	}
	head := 2
	if len(args) > 2 {
		if sub := find(cmd.Subcommands, args[2]); sub != nil {
			cmd, head = sub, 3
		}
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[head:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if takesValue[name] && !hasValue && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	out := append(append([]string{}, args[:head]...), flags...)
	return append(out, positional...)
}
