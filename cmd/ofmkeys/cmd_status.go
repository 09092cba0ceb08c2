package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/rotation"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "are we OK? every key, days left, state, next transition, the last proof, the alerts firing; exit 0 ok, 1 warning, 2 critical",
		Description: `Asks the running daemon (--daemon, its /status.json) for the whole picture: keys,
transitions, the last proof, every alert firing (expiry, registration, rotation, proof,
store, self-check, probes, watched files). When no daemon answers, it shows what the
store alone tells (keys, transitions, expiry and registration alerts) and warns that
the daemon is not reachable; --daemon "" asks no daemon.

Exit code: 0 all fine, 1 a warning fires, 2 a critical alert fires; for cron and CI,
like step certificate needs-renewal.`,
		Flags: append(append(policyFlags(), jsonFlag(),
			stringFlag("daemon", "the running ofmkeys serve to ask (its base URL); empty: none", "http://"+daemon.DefaultListen)),
			alertFlags()...),
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var st *monitor.Status
	var note string
	if base := c.String("daemon"); base != "" {
		var err error
		if st, err = daemonStatus(c.Context, base); err != nil {
			note = fmt.Sprintf("the daemon at %s did not answer (%v): this is the store's view; the last proof and the daemon's alerts are unknown", base, err)
		}
	}
	if st == nil {
		var err error
		if st, err = localStatus(c); err != nil {
			return err
		}
		if note != "" {
			st.Notes = append(st.Notes, note)
			st.Alerts = append(st.Alerts, monitor.Alert{Rule: "DaemonUnreachable", Severity: monitor.Warning, Key: c.String("daemon"), Summary: note})
			st.Level = monitor.Level(st.Alerts)
		}
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, st); err != nil {
			return err
		}
	} else {
		printStatus(c, st)
	}
	switch st.Level {
	case "critical":
		return exitStatus(2)
	case "warning":
		return exitStatus(1)
	}
	return nil
}

// daemonStatus reads a running daemon's /status.json.
func daemonStatus(ctx context.Context, base string) (*monitor.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+daemon.PathStatusJSON, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var st monitor.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("not a status document: %v", err)
	}
	return &st, nil
}

// localStatus is what the store alone tells.
func localStatus(c *cli.Context) (*monitor.Status, error) {
	pol, err := policyFrom(c)
	if err != nil {
		return nil, err
	}
	rules, err := rulesFromText(func(name string) string { return flagText(c, name) })
	if err != nil {
		return nil, err
	}
	var st *monitor.Status
	err = withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		t := now(c)
		st = &monitor.Status{DCID: ks.DCID, Generated: t, Keys: monitor.KeyRows(ks, pol, t), Next: rotation.Plan(ks, t, pol)}
		var f monitor.Facts
		f.Now = t
		f.AddKeyset(ks)
		f.Store.OK, f.Store.LastSuccess = true, t
		st.Alerts = rules.Evaluate(f)
		if st.Alerts == nil {
			st.Alerts = []monitor.Alert{}
		}
		st.Level = monitor.Level(st.Alerts)
		return nil
	})
	return st, err
}

// printStatus is the one screen.
func printStatus(c *cli.Context, st *monitor.Status) {
	w := c.App.Writer
	fmt.Fprintf(w, "%s: dc_id %s at %s\n", strings.ToUpper(st.Level), st.DCID, st.Generated.UTC().Format("2006-01-02 15:04Z"))
	for _, n := range st.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	next := map[string]rotation.Step{}
	for _, s := range st.Next {
		if _, seen := next[string(s.Purpose)]; !seen {
			next[string(s.Purpose)] = s
		}
	}
	tw := newTable(c)
	fmt.Fprintln(tw, "PURPOSE\tSTATE\tKID\tNOT AFTER\tDAYS LEFT\tNEXT")
	for _, k := range st.Keys {
		if k.State == keyset.Retired {
			continue
		}
		nx := "-"
		if s, ok := next[string(k.Purpose)]; ok && (s.Kid == k.Kid || k.State == keyset.Active) {
			when := "when an operator acts"
			if !s.At.IsZero() {
				when = s.At.UTC().Format("2006-01-02 15:04Z")
			}
			nx = fmt.Sprintf("%s %s", s.Action, when)
			delete(next, string(k.Purpose))
		}
		state := string(k.State)
		if k.Halted != "" {
			state += " (halted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", k.Purpose, state, k.Kid, k.NotAfter.UTC().Format("2006-01-02"), k.DaysLeft, nx)
	}
	tw.Flush()
	fmt.Fprintln(w)
	switch p := st.Proof; {
	case p == nil:
		fmt.Fprintln(w, "Last proof: none known (ofmkeys serve --sandbox proves the keys; ofmkeys check runs one)")
	case p.OK:
		fmt.Fprintf(w, "Last proof: passed at %s (%d steps)\n", p.At.UTC().Format("2006-01-02 15:04Z"), len(p.Steps))
	default:
		failed := p.Steps[len(p.Steps)-1]
		fmt.Fprintf(w, "Last proof: FAILED at %s, step %s: %s\n", p.At.UTC().Format("2006-01-02 15:04Z"), failed.Name, failed.Error)
	}
	if len(st.Watched) > 0 {
		fmt.Fprintf(w, "Watched certificates: %d (files, TLS endpoints, remote JWKS)\n", len(st.Watched))
	}
	fmt.Fprintln(w)
	if len(st.Alerts) == 0 {
		fmt.Fprintln(w, "No alerts firing.")
		return
	}
	fmt.Fprintf(w, "Alerts firing (%d):\n", len(st.Alerts))
	tw = newTable(c)
	for _, a := range st.Alerts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Severity, a.Rule, a.Summary)
	}
	tw.Flush()
}
