package dnsview

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zkcoord/zkcoord/internal/registry"
)

// fakeGroups is a registry state for the mapping's unit test: group name
// → member ids (an empty list: a group whose members all left).
type fakeGroups map[string][]string

func (f fakeGroups) list() registry.GroupList {
	var names []string
	for g := range f {
		names = append(names, g)
	}
	slices.Sort(names)
	return registry.GroupList{Names: names, Rev: 1}
}

func (f fakeGroups) read(g string) (*groupView, error) {
	ids, ok := f[g]
	if !ok {
		return nil, errors.New("read of a group not listed: " + g)
	}
	var v registry.View
	for _, id := range ids {
		v.Members = append(v.Members, &registry.Member{Group: g, ID: id})
	}
	return newGroupView(v), nil
}

func mustOptions(t *testing.T, opt ...Option) *options {
	t.Helper()
	o, err := apply(opt)
	if err != nil {
		t.Fatal(err)
	}
	return &o
}

// TestResolve: how names map to groups and members, table-driven. want is
// the kind, then "group" or "group/member" for a group or member.
func TestResolve(t *testing.T) {
	state := fakeGroups{
		"web":         {"w1", "10.0.0.5", "Mixed"},
		"api.web":     {"a1"},
		"db.prod":     {"d1"},
		"empty":       {},             // every member left
		"5.web":       {},             // empty: does not take 10.0.0.5.web
		"Case":        {"c1"},         // names that differ only in case:
		"case":        {"c2"},         // refused
		"dup":         {"X", "x"},     // members that do too
		"secret.team": {"s1"},         // outside the allow-list below
		"odd_=:@":     {"m@1", "k=v"}, // the other characters of names
	}
	o := mustOptions(t, WithGroups("web", "api", "db.", "empty", "5.", "case", "dup", "odd"))
	tab := newTable(state.list(), o)
	for _, tc := range []struct{ name, want string }{
		{"zkcoord.", "apex"},
		{"web.zkcoord.", "group web"},
		{"WEB.ZKCOORD.", "group web"},
		{"w1.web.zkcoord.", "member web/w1"},
		{"W1.Web.zkcoord.", "member web/w1"},
		{"mixed.web.zkcoord.", "member web/Mixed"},
		{"10.0.0.5.web.zkcoord.", "member web/10.0.0.5"}, // a member id with dots
		{"0.0.5.web.zkcoord.", "empty"},                  // above that member
		{"0.5.web.zkcoord.", "empty"},
		{"5.web.zkcoord.", "empty"},           // the empty group 5.web, and above 10.0.0.5
		{"api.web.zkcoord.", "group api.web"}, // the longest group wins
		{"a1.api.web.zkcoord.", "member api.web/a1"},
		{"nope.web.zkcoord.", "none"},
		{"x.nope.web.zkcoord.", "none"},
		{"db.prod.zkcoord.", "group db.prod"},
		{"d1.db.prod.zkcoord.", "member db.prod/d1"},
		{"prod.zkcoord.", "refused"}, // prod is no prefix of the list: whatever is below
		{"empty.zkcoord.", "none"},
		{"x.empty.zkcoord.", "none"},
		{"case.zkcoord.", "refused"},
		{"c1.case.zkcoord.", "refused"},
		{"dup.zkcoord.", "group dup"},
		{"x.dup.zkcoord.", "refused"},
		{"secret.team.zkcoord.", "refused"},
		{"s1.secret.team.zkcoord.", "refused"},
		{"webhooks.zkcoord.", "none"}, // admitted (prefix web), absent
		{"odd_=:@.zkcoord.", "group odd_=:@"},
		{`m\@1.odd_=:@.zkcoord.`, "member odd_=:@/m@1"},
		{"k=v.odd_=:@.zkcoord.", "member odd_=:@/k=v"},
		{`w\0001.web.zkcoord.`, "none"}, // a byte no name has
		{`w\.1.web.zkcoord.`, "none"},   // a dot inside a label
		{"w!1.web.zkcoord.", "none"},
		{"bad!.zkcoord.", "refused"}, // no admitted reading at all
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".web.zkcoord.", "none"}, // member id too long
		{strings.Repeat("web", 21) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".zkcoord.", "refused"},
	} {
		labels, ok := split(tc.name, o.domain)
		if !ok {
			t.Errorf("%s: not in the domain", tc.name)
			continue
		}
		p, err := resolve(labels, tab, o, state.read)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := describe(p); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{"example.com.", "zkcoord.com.", "web.zkcoord.org.", "."} {
		if _, ok := split(name, o.domain); ok {
			t.Errorf("%s: in the domain %s", name, o.domain)
		}
	}
}

func describe(p place) string {
	switch p.kind {
	case kindApex:
		return "apex"
	case kindGroup:
		return "group " + p.group
	case kindMember:
		return "member " + p.group + "/" + p.member.ID
	case kindEmpty:
		return "empty"
	case kindRefused:
		return "refused"
	}
	return "none"
}

// TestMemberName: SRV targets are member names that map back to their
// member; a member whose name would not is left out.
func TestMemberName(t *testing.T) {
	state := fakeGroups{"web": {"w1", "10.0.0.5", "X", "x", strings.Repeat("l", 64)}, "api.web": {"m"}, "5.web": {"y"}}
	o := mustOptions(t, WithGroups("*"))
	tab := newTable(state.list(), o)
	for _, tc := range []struct {
		id, group, want string
	}{
		{"w1", "web", "w1.web.zkcoord."},
		{"10.0.0.5", "web", ""},              // taken by the group 5.web, which has members
		{"X", "web", ""},                     // X and x cannot be told apart
		{strings.Repeat("l", 64), "web", ""}, // a label of 64
		{"m", "api.web", "m.api.web.zkcoord."},
	} {
		got, _ := memberName(tc.id, tc.group, o.domain, tab, o, state.read)
		if got != tc.want {
			t.Errorf("memberName(%s, %s) = %q, want %q", tc.id, tc.group, got, tc.want)
		}
	}
}

// TestOptions: each option refuses what it cannot work with.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  []Option
		want string // "" for no error
	}{
		{"defaults need groups", nil, "no groups"},
		{"all groups", []Option{WithGroups("*")}, ""},
		{"prefixes", []Option{WithGroups("web", "db.prod", "A-b_c:d@e=f")}, ""},
		{"no prefix", []Option{WithGroups()}, "at least one"},
		{"empty prefix", []Option{WithGroups("")}, "group prefix"},
		{"prefix with a slash", []Option{WithGroups("a/b")}, "group prefix"},
		{"prefix starting with a dot", []Option{WithGroups(".a")}, "group prefix"},
		{"domain", []Option{WithGroups("*"), WithDomain("svc.example")}, ""},
		{"root domain", []Option{WithGroups("*"), WithDomain(".")}, "domain"},
		{"domain with a space", []Option{WithGroups("*"), WithDomain("a b.")}, "domain"},
		{"domain with an at", []Option{WithGroups("*"), WithDomain("a@b.")}, "domain"},
		{"empty label", []Option{WithGroups("*"), WithDomain("a..b.")}, "domain"},
		{"ttl 0", []Option{WithGroups("*"), WithTTL(0)}, ""},
		{"negative ttl", []Option{WithGroups("*"), WithTTL(-1e9)}, "TTL"},
		{"ttl of a fraction", []Option{WithGroups("*"), WithTTL(1500e6)}, "TTL"},
		{"ttl too long", []Option{WithGroups("*"), WithTTL(MaxTTL + 1e9)}, "TTL"},
		{"nil serving", []Option{WithGroups("*"), WithServing(nil)}, "serving"},
		{"nil logger", []Option{WithGroups("*"), WithLogger(nil)}, "logger"},
	} {
		err := Check(tc.opt...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	o := mustOptions(t, WithGroups("*"), WithDomain("Svc.Example"))
	if o.domain != "svc.example." {
		t.Errorf("domain %q, want svc.example.", o.domain)
	}
}
