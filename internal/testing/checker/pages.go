package checker

import (
	"errors"
	"fmt"
	"strings"
)

// PageWrite is one acknowledged write of a group's member: a put of Value
// (or, with Del, a removal) of member ID at revision Rev.
type PageWrite struct {
	ID, Value string
	Del       bool
	Rev       int64
}

// PagedMember is a member as a page of a paged read shows it.
type PagedMember struct{ ID, Value string }

// StateAt is the group that a history of acknowledged writes makes at rev:
// member IDs to values.
func StateAt(history []PageWrite, rev int64) map[string]string {
	st := map[string]string{}
	for _, w := range history {
		switch {
		case w.Rev > rev:
		case w.Del:
			delete(st, w.ID)
		default:
			st[w.ID] = w.Value
		}
	}
	return st
}

// CheckPages reports how the pages of a paged read (a whole-group Lookup
// followed by its page tokens, or a paged snapshot) differ from the group
// at rev as the history makes it: members in ID order across pages,
// nothing duplicated, nothing missed, every value as of rev, nothing that
// joined after it. The history must hold every write of the group up to
// rev (later ones may be there too: they are the ones a read must not
// show).
func CheckPages(pages [][]PagedMember, rev int64, history []PageWrite) error {
	want := StateAt(history, rev)
	seen := map[string]bool{}
	last := ""
	var errs []string
	for pi, p := range pages {
		for _, m := range p {
			switch {
			case seen[m.ID]:
				errs = append(errs, fmt.Sprintf("page %d: %s again", pi, m.ID))
			case m.ID <= last:
				errs = append(errs, fmt.Sprintf("page %d: %s after %s", pi, m.ID, last))
			}
			seen[m.ID], last = true, max(last, m.ID)
			if v, ok := want[m.ID]; !ok {
				errs = append(errs, fmt.Sprintf("page %d: %s not in the group at %d", pi, m.ID, rev))
			} else if v != m.Value {
				errs = append(errs, fmt.Sprintf("page %d: %s=%s, at %d it was %s", pi, m.ID, m.Value, rev, v))
			}
		}
	}
	for id := range want {
		if !seen[id] {
			errs = append(errs, fmt.Sprintf("%s missed", id))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
