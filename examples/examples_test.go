// Package examples holds configuration for the tools around ofmkeys; its
// test checks each file with the tool that reads it.
package examples_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tool finds a program make test installs.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: make test installs Debian's %s package", name, pkg)
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// The alert rules load, and fire where ofmkeys's own rules do.
func TestPrometheusRulesPassPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	out, _ := run(t, "prometheus", promtool, "check", "rules", "ofmkeys-alerts.yml")
	if !strings.Contains(out, "SUCCESS: 13 rules found") {
		t.Fatalf("promtool check rules: %s", out)
	}
	out, _ = run(t, "prometheus", promtool, "test", "rules", "ofmkeys-alerts.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}
}

// declaredMetrics are the metric names the daemon defines.
func declaredMetrics(t *testing.T) map[string]bool {
	src, err := os.ReadFile("../daemon/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, m := range regexp.MustCompile(`"(ofmkeys_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		names[m[1]] = true
	}
	return names
}

// Every metric the dashboard and the rules query exists.
func TestTheDashboardAndRulesQueryRealMetrics(t *testing.T) {
	declared := declaredMetrics(t)
	raw, err := os.ReadFile("grafana/ofmkeys-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("the dashboard is not a Grafana dashboard: %v", err)
	}
	rules, _ := os.ReadFile("prometheus/ofmkeys-alerts.yml")
	texts := []string{string(rules)}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			texts = append(texts, q.Expr)
		}
	}
	used := 0
	for _, text := range texts {
		for _, m := range regexp.MustCompile(`\bofmkeys_[a-z_]+`).FindAllString(text, -1) {
			used++
			if !declared[m] {
				t.Errorf("%s is queried but the daemon has no such metric", m)
			}
		}
	}
	if used < 20 {
		t.Fatalf("only %d metric references found", used)
	}
}

// The unit passes systemd's own check (ExecStart pointed at a program that
// exists here), with no warning.
func TestTheSystemdUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("systemd/ofmkeys.service")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	text := strings.Replace(string(unit), "/usr/local/bin/ofmkeys", exe, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "ofmkeys.service")
	os.WriteFile(path, []byte(text), 0o644)
	_, stderr := run(t, dir, analyze, "verify", path)
	if strings.TrimSpace(stderr) != "" {
		t.Fatalf("systemd-analyze verify warns:\n%s", stderr)
	}
	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict", "--config /etc/ofmkeys/ofmkeys.yaml"} {
		if !strings.Contains(text, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	if !slices.Contains(strings.Split(text, "\n"), "User=ofmkeys") {
		t.Error("the unit runs as root")
	}
}
