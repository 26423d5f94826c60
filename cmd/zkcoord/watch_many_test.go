package main

import (
	"strings"
	"testing"
	"time"
)

// TestWatchSeveralGroups: watch with several groups follows them on one
// Watch stream, each line starting with its group; a bad name is reported
// on stderr and the others go on; interrupted, it exits 0.
func TestWatchSeveralGroups(t *testing.T) {
	w := background(t, "watch", "cli-many-a", "bad/name", "cli-many-b")
	waitFor(t, 30*time.Second, "both snapshots", func() bool {
		out := w.out.String()
		return strings.Contains(out, "cli-many-a") && strings.Contains(out, "cli-many-b")
	})
	for _, g := range []string{"cli-many-a", "cli-many-b"} {
		if code, _ := runCmd(t, "register", g, "m1", "10.0.0.1:80", "--persistent"); code != 0 {
			t.Fatalf("register in %s: exit %d", g, code)
		}
	}
	waitFor(t, 30*time.Second, "both joins", func() bool {
		n := 0
		for _, l := range strings.Split(w.out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[2] == "joined" && f[3] == "m1" {
				n++
			}
		}
		return n == 2
	})
	w.cancel()
	if code := w.wait(t); code != 0 {
		t.Errorf("watch interrupted: exit %d, want 0; stderr %q", code, w.err.String())
	}
	if !strings.Contains(w.err.String(), "bad/name") {
		t.Errorf("stderr %q does not report bad/name", w.err.String())
	}
	if code, out := runCmd(t, "watch", "a", "b", "--rev", "3"); code == 0 {
		t.Errorf("watch a b --rev 3: exit 0 (%q), want a usage error", out)
	}
	t.Logf("stdout:\n%sstderr:\n%s", w.out.String(), w.err.String())
}
