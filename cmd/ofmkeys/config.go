package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// applyConfig sets, from the --config file, the flags of one level (the
// app's global flags, or a command's own) that neither the command line nor
// the environment set: precedence flags > environment > file > defaults.
// Keys of the file are flag names; a key no command knows is an error.
func applyConfig(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		path := c.String("config")
		if path == "" {
			return nil
		}
		values, err := readConfig(path)
		if err != nil {
			return configError{err}
		}
		known := allFlagNames(c.App)
		for _, k := range slices.Sorted(maps.Keys(values)) {
			if !known[k] {
				return configError{fmt.Errorf("config %s: unknown setting %q (settings are flag names, e.g. dc-id, store, vault-mount)", path, k)}
			}
		}
		fromFile := map[string]bool{}
		for _, f := range flags {
			name := f.Names()[0]
			v, ok := values[name]
			if !ok || name == "config" || c.IsSet(name) {
				continue
			}
			if err := c.Set(name, v); err != nil {
				return configError{fmt.Errorf("config %s: %s: %q: %v", path, name, v, err)}
			}
			fromFile[name] = true
		}
		if c.App.Metadata == nil {
			c.App.Metadata = map[string]any{}
		}
		c.App.Metadata[fromFileKey] = fromFile
		return nil
	}
}

// fromFileKey names, in App.Metadata, the flags the config file set: a
// reload (serve's SIGHUP) replaces exactly those.
const fromFileKey = "ofmkeys/from-config-file"

// setByFile reports whether the config file (not a flag or the
// environment) gave the flag its value.
func setByFile(c *cli.Context, name string) bool {
	m, _ := c.App.Metadata[fromFileKey].(map[string]bool)
	return m[name]
}

// readConfig reads a flat YAML mapping of flag names to scalars.
func readConfig(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("config %s: not YAML: %v", path, err)
	}
	out := make(map[string]string, len(doc))
	for k, v := range doc {
		switch x := v.(type) {
		case string:
			out[k] = x
		case bool, int, float64:
			out[k] = fmt.Sprint(x)
		case nil:
		default:
			return nil, fmt.Errorf("config %s: %s: want a single value, found %T", path, k, v)
		}
	}
	return out, nil
}

func allFlagNames(app *cli.App) map[string]bool {
	known := map[string]bool{}
	add := func(fs []cli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				known[strings.TrimSpace(n)] = true
			}
		}
	}
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			add(cmd.Flags)
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
	return known
}
