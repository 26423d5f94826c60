package dnsview

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/validate"
)

// How a name maps to a group and a member.
//
// A name below the domain is labels L1...Ln (left to right). Group and
// member names may hold dots, so each split is a reading: the group
// Lk+1...Ln and the member L1...Lk (k = 0: the group itself). The view
// takes the reading with the longest group that exists and has members;
// the labels before it, if any, name a member of it. Everything is
// compared without regard to case, as DNS does; two groups (or two
// members of a group) whose names differ only in case cannot be told
// apart, and such a name is refused.
//
// A name with no reading whose group is admitted by WithGroups is
// refused, whatever exists: the answer says nothing of groups outside the
// allow-list. A name that is no member and no group, but lies above one
// (prod when web.prod exists, 0.5.web when web has a member 10.0.0.5),
// exists without records (NODATA, as DNS requires of such "empty
// non-terminals"); anything else is NXDOMAIN.

// maxName is the longest group or member name.
const maxName = validate.MaxNameLen

// kind is what a name turned out to be.
type kind int

const (
	kindNone    kind = iota // no such name: NXDOMAIN
	kindApex                // the domain itself
	kindGroup               // a group with members
	kindMember              // a member of a group
	kindEmpty               // exists, above a group or member, without records
	kindRefused             // outside the allow-list, or ambiguous
)

// place is what a name maps to.
type place struct {
	kind   kind
	why    string // for a refusal, the log's reason
	group  string // actual name (kindGroup, kindMember)
	view   *groupView
	member *registry.Member // kindMember
}

// table is the admitted groups of one listing of the registry, for mapping
// names: rebuilt only when a group is created.
type table struct {
	rev    int64
	groups map[string][]string // folded name → actual names
	above  map[string]bool     // folded names that lie above an admitted group
}

func newTable(gl registry.GroupList, o *options) *table {
	t := &table{rev: gl.Rev, groups: map[string][]string{}, above: map[string]bool{}}
	for _, g := range gl.Names {
		f := fold(g)
		if !o.allowed(f) {
			continue
		}
		t.groups[f] = append(t.groups[f], g)
		for i := strings.IndexByte(f, '.'); i >= 0; {
			f = f[i+1:]
			t.above[f] = true
			i = strings.IndexByte(f, '.')
		}
	}
	return t
}

// split returns the labels of name below domain, folded, and whether name
// is in domain at all. A name that cannot be packed is not.
func split(name, domain string) (labels []string, ok bool) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	for off := 0; off < n && buf[off] != 0; {
		l := int(buf[off])
		labels = append(labels, fold(string(buf[off+1:off+1+l])))
		off += 1 + l
	}
	d := dns.SplitDomainName(domain)
	if len(labels) < len(d) {
		return nil, false
	}
	for i, l := range d {
		if labels[len(labels)-len(d)+i] != l {
			return nil, false
		}
	}
	return labels[:len(labels)-len(d)], true
}

// valid reports whether labels joined with dots can be a group or member
// name: every label of name characters, at most maxName in all.
func valid(labels []string) bool {
	n := len(labels) - 1
	for _, l := range labels {
		n += len(l)
		for i := 0; i < len(l); i++ {
			if !nameByte(l[i]) {
				return false
			}
		}
	}
	return n <= maxName
}

// nameByte reports whether c may be in a label of a group or member name:
// the characters of names (internal/validate), less the dot that
// separates labels.
func nameByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("_:@=-", c) >= 0
}

// fold lowers the ASCII letters of s, as DNS compares names.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// groupView is a group as a Lookup saw it, with its members by folded id.
type groupView struct {
	registry.View
	byID map[string][]*registry.Member
}

func newGroupView(v registry.View) *groupView {
	gv := &groupView{View: v, byID: make(map[string][]*registry.Member, len(v.Members))}
	for _, m := range v.Members {
		f := fold(m.ID)
		gv.byID[f] = append(gv.byID[f], m)
	}
	return gv
}

// lookup is how the mapping reads a group: the registry's cached view.
type lookup func(group string) (*groupView, error)

// resolve maps the labels of a name below the domain to a place.
func resolve(labels []string, t *table, o *options, read lookup) (place, error) {
	if len(labels) == 0 {
		return place{kind: kindApex}, nil
	}
	whole := strings.Join(labels, ".")
	admitted := false
	for k := range labels {
		if !valid(labels[k:]) {
			continue
		}
		g := strings.Join(labels[k:], ".")
		if !o.allowed(g) {
			continue
		}
		admitted = true
		names := t.groups[g]
		if len(names) > 1 {
			return place{kind: kindRefused, why: "groups differ only in case: " + strings.Join(names, ", ")}, nil
		}
		if len(names) == 0 {
			continue
		}
		v, err := read(names[0])
		if err != nil {
			return place{}, err
		}
		if len(v.Members) == 0 {
			continue
		}
		p := place{kind: kindGroup, group: names[0], view: v}
		if k == 0 {
			return p, nil
		}
		id := strings.Join(labels[:k], ".")
		switch ms := v.byID[id]; {
		case len(ms) > 1:
			return place{kind: kindRefused, why: "members differ only in case: " + id}, nil
		case len(ms) == 1:
			p.kind, p.member = kindMember, ms[0]
			return p, nil
		case t.above[whole] || aboveMember(v, id):
			return place{kind: kindEmpty}, nil
		default:
			return place{kind: kindNone}, nil
		}
	}
	switch {
	case !admitted:
		return place{kind: kindRefused, why: "no group of the allow-list"}, nil
	case t.above[whole]:
		return place{kind: kindEmpty}, nil
	default:
		return place{kind: kindNone}, nil
	}
}

// aboveMember reports whether id (folded) is a proper suffix, label-wise,
// of a member id of v: the name lies above that member's.
func aboveMember(v *groupView, id string) bool {
	for f := range v.byID {
		if len(f) > len(id) && strings.HasSuffix(f, "."+id) {
			return true
		}
	}
	return false
}

// memberName is the name of member id of group in domain, if the view
// maps that name back to that member: its labels fit DNS, no longer group
// with members takes it, and no other member's id differs from it only
// in case. It is what SRV answers name as their targets.
func memberName(id, group, domain string, t *table, o *options, read lookup) (string, bool) {
	name := id + "." + group + "." + domain
	if len(name) > 253 {
		return "", false
	}
	fid := fold(id)
	if v, err := read(group); err == nil && !strings.Contains(id, ".") && len(id) <= 63 && len(v.byID[fid]) == 1 && t.groups[fid+"."+fold(group)] == nil {
		return name, true // the common case, without a full mapping: no longer group, one member of that id
	}
	labels := strings.Split(fid+"."+fold(group), ".") // names hold no escapes
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", false
		}
	}
	p, err := resolve(labels, t, o, read)
	if err != nil || p.kind != kindMember || p.group != group || p.member.ID != id {
		return "", false
	}
	return name, true
}
