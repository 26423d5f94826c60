package zkcoord_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAlertRules checks deploy/prometheus/alerts.yml with Prometheus's own
// tool: the rules parse (promtool check rules), and each alert fires on the
// series of alerts_test.yml that should fire it, and only then (promtool
// test rules). promtool is Debian's prometheus package, which
// scripts/deps.sh installs for make test.
func TestAlertRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (scripts/deps.sh does, for make test)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "deploy/prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
