package checker

import (
	"fmt"
	"strings"
	"testing"
)

func TestResultKeepsTenExamples(t *testing.T) {
	r := Result{Name: "x"}
	for i := 0; i < 15; i++ {
		r.check()
		r.fail("violation %d", i)
	}
	if r.Violations != 15 || len(r.Examples) != maxExamples || r.Examples[9] != "violation 9" {
		t.Errorf("violations=%d examples=%q", r.Violations, r.Examples)
	}
}

func TestReport(t *testing.T) {
	rep := Report{
		{Name: "leadership", Checks: 12},
		{Name: "barriers", Checks: 4, Violations: 1, Examples: []string{"early release: b"}},
		{Name: "leases", Checks: 3, Unchecked: 2},
	}
	if rep.OK() || rep[:1].OK() != true {
		t.Errorf("OK: %v, first only: %v", rep.OK(), rep[:1].OK())
	}
	lines := strings.Split(strings.TrimSuffix(rep.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("String has %d lines:\n%s", len(lines), rep)
	}
	for i, want := range []string{"leadership", "checks=4 ", "unchecked=2"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[1], "FAIL") || !strings.HasSuffix(lines[0], "ok") {
		t.Errorf("verdicts: %q, %q", lines[0], lines[1])
	}
	if !strings.Contains(rep.Details(), "    early release: b\n") {
		t.Errorf("Details lacks the example:\n%s", rep.Details())
	}
}

func ExampleReport() {
	h := NewHistory()
	h.Record(Event{Time: at(0), Kind: KindElected, Client: "a", Election: "e", Token: 10})
	h.Record(Event{Time: at(100), Kind: KindResigned, Client: "a", Election: "e", Token: 10})
	h.Record(Event{Time: at(150), Kind: KindElected, Client: "b", Election: "e", Token: 20})
	h.Record(Event{Time: at(160), Kind: KindElected, Client: "c", Election: "e", Token: 30})
	rep := Report{CheckLeadership(h)}
	fmt.Print(rep.Details())
	// Output:
	// leadership        checks=5      violations=1    unchecked=0    FAIL
	//     overlap: election e: c ELECTED with token 30 at 03:04:05.160 while b's term (token 20) was live
}
