package checker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckLinearizable(t *testing.T) {
	memberLookup := func(ms int, client, member string, members map[string]string) Event {
		e := lookup(ms, client, members)
		e.Member = member
		return e
	}
	for _, tc := range []struct {
		name               string
		evs                []Event
		checks, violations int
		want               string
	}{
		{
			name: "correct: owners, refusals, unknown outcome, persistent",
			evs: []Event{
				reg(0, "c1", "a", "v1", "L1", ""),
				lookup(20, "c2", map[string]string{"a": "v1"}),
				reg(40, "c2", "a", "v2", "L2", ErrAlreadyExists),
				reg(45, "c1", "a", "v1b", "L1", ""), // same owner: update
				dereg(60, "c2", "a", "L2", ErrPermissionDenied),
				lookup(70, "c2", map[string]string{"a": "v1b"}),
				dereg(80, "c1", "a", "L1", ""),
				dereg(95, "c1", "a", "L1", ErrNotFound),
				lookup(110, "c2", nil),
				reg(130, "c3", "a", "v3", "L3", "Unavailable"), // may apply later
				lookup(150, "c2", nil),
				lookup(170, "c2", map[string]string{"a": "v3"}),
				lookup(190, "c4", map[string]string{"a": "v3"}),
				reg(200, "c1", "b", "x", "", ""), // persistent
				reg(220, "c2", "b", "y", "", ""), // persistent again: same owner
				memberLookup(240, "c3", "b", map[string]string{"b": "y"}),
				lookup(250, "c2", nil).withErr("DeadlineExceeded"), // tells nothing
			},
			checks: 2, // g/a, g/b
		},
		{
			name:       "register then lookup misses it",
			evs:        []Event{reg(0, "c1", "a", "v", "L1", ""), lookup(20, "c2", nil)},
			checks:     1,
			violations: 1,
			want:       "g/a: 2 operations not linearizable",
		},
		{
			name:       "stale value after update",
			evs:        []Event{reg(0, "c1", "a", "v1", "L1", ""), reg(20, "c1", "a", "v2", "L1", ""), lookup(40, "c2", map[string]string{"a": "v1"})},
			checks:     1,
			violations: 1,
		},
		{
			name: "unknown outcome applies once",
			evs: []Event{reg(0, "c1", "a", "v", "L1", "DeadlineExceeded"), lookup(20, "c2", nil),
				lookup(40, "c2", map[string]string{"a": "v"}), lookup(60, "c2", nil)},
			checks:     1,
			violations: 1,
		},
		{
			name:       "AlreadyExists with nobody registered",
			evs:        []Event{reg(0, "c1", "a", "v", "L1", ErrAlreadyExists)},
			checks:     1,
			violations: 1,
		},
		{
			name:   "abandoned lease ends its member",
			evs:    []Event{reg(0, "c1", "a", "v", "L1", ""), abandon(100, "L1"), lookup(200, "c2", map[string]string{"a": "v"}), lookup(3300, "c2", nil)},
			checks: 1,
		},
		{
			name:       "member vanishes unexplained",
			evs:        []Event{reg(0, "c1", "a", "v", "L1", ""), lookup(3300, "c2", nil)},
			checks:     1,
			violations: 1,
		},
		{
			name: "lost lease ended between its last renewal and NOT_FOUND",
			evs: []Event{reg(0, "c1", "a", "v", "L1", ""), keepalive(1000, "L1"), lookup(1100, "c2", map[string]string{"a": "v"}),
				{Time: at(4500), Kind: KindLeaseLost, Client: "c1", Lease: "L1"}, lookup(4600, "c2", nil)},
			checks: 1,
		},
		{
			name: "member gone before the lease's last renewal",
			evs: []Event{reg(0, "c1", "a", "v", "L1", ""), lookup(500, "c2", nil), keepalive(1000, "L1"),
				{Time: at(4500), Kind: KindLeaseLost, Client: "c1", Lease: "L1"}},
			checks:     1,
			violations: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckLinearizable(history(tc.evs...), 10*time.Second)
			assertResult(t, r, tc.checks, tc.violations, 0)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}

// withErr returns e with its outcome set.
func (e Event) withErr(err string) Event {
	e.Err = err
	return e
}

func TestCheckLinearizableVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lin.html")
	h := history(reg(0, "c1", "a", "v", "L1", ""), lookup(20, "c2", nil), reg(40, "c1", "b", "w", "L1", ""), lookup(60, "c2", map[string]string{"b": "w"}))
	r := CheckLinearizable(h, 0, WithVisualization(path))
	assertResult(t, r, 2, 1, 0)
	if last := r.Examples[len(r.Examples)-1]; last != "visualization: "+path {
		t.Errorf("last example %q", last)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "lookup(g/a)") {
		t.Errorf("visualization: %v, %d bytes", err, len(b))
	}

	// No violation, no file.
	path2 := filepath.Join(t.TempDir(), "none.html")
	assertResult(t, CheckLinearizable(history(reg(0, "c1", "a", "v", "L1", "")), 0, WithVisualization(path2)), 1, 0, 0)
	if _, err := os.Stat(path2); !os.IsNotExist(err) {
		t.Errorf("visualization written without a violation: %v", err)
	}
}

func TestCheckLinearizableTimeout(t *testing.T) {
	// A budget that runs out leaves partitions unchecked, never passed.
	var evs []Event
	for i, m := range []string{"a", "b", "c", "d"} {
		evs = append(evs, reg(i*100, "c1", m, "v", "L1", ""))
	}
	r := CheckLinearizable(history(evs...), time.Nanosecond)
	if r.Checks+r.Unchecked != 4 || r.Violations != 0 {
		t.Errorf("checks=%d unchecked=%d violations=%d, want 4 decided or not", r.Checks, r.Unchecked, r.Violations)
	}
}
