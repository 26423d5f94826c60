package checker

import "testing"

// TestCheckPagesCatchesBrokenReads feeds CheckPages broken reads: a
// checker that passed them could not fail the tests that use it.
func TestCheckPagesCatchesBrokenReads(t *testing.T) {
	h := []PageWrite{{ID: "a", Value: "1", Rev: 1}, {ID: "b", Value: "1", Rev: 2}, {ID: "c", Value: "1", Rev: 3},
		{ID: "b", Value: "2", Rev: 5}, {ID: "d", Value: "1", Rev: 6}, {ID: "a", Del: true, Rev: 7}}
	m := func(id, v string) PagedMember { return PagedMember{id, v} }
	good := [][]PagedMember{{m("a", "1"), m("b", "1")}, {m("c", "1")}}
	if err := CheckPages(good, 4, h); err != nil {
		t.Fatalf("a good read: %v", err)
	}
	if err := CheckPages([][]PagedMember{{m("b", "2")}, {m("c", "1"), m("d", "1")}}, 7, h); err != nil {
		t.Fatalf("a good read at 7: %v", err)
	}
	for name, pages := range map[string][][]PagedMember{
		"duplicate":     {{m("a", "1"), m("b", "1")}, {m("b", "1"), m("c", "1")}},
		"missed":        {{m("a", "1")}, {m("c", "1")}},
		"newer value":   {{m("a", "1"), m("b", "2")}, {m("c", "1")}},
		"later join":    {{m("a", "1"), m("b", "1")}, {m("c", "1"), m("d", "1")}},
		"out of order":  {{m("b", "1"), m("a", "1")}, {m("c", "1")}},
		"next revision": {{m("b", "2"), m("c", "1")}},
		"empty":         {},
	} {
		if err := CheckPages(pages, 4, h); err == nil {
			t.Errorf("%s: the checker passed %v", name, pages)
		}
	}
}
