package validate

import zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"

// MaxPageSize is the most items one page of an InspectService list holds.
const MaxPageSize = 1000

// inspectRules checks the requests of inspect.proto, reporting false for
// other types: a prefix is "" or the start of a name (the name rules, so it
// cannot reach outside the recipe's directory), a page size 0 to
// MaxPageSize, and a page token the last name (or lease key) of a page.
func inspectRules(msg any, v *violations) bool {
	type page interface {
		GetPageSize() int32
		GetPageToken() string
	}
	var p page
	key := false // the token is a lease key
	switch m := msg.(type) {
	case *zkcoordv1.ListGroupsRequest:
		v.name("prefix", m.GetPrefix(), false)
		p = m
	case *zkcoordv1.ListElectionsRequest:
		v.name("prefix", m.GetPrefix(), false)
		p = m
	case *zkcoordv1.ListBarriersRequest:
		v.name("prefix", m.GetPrefix(), false)
		p = m
	case *zkcoordv1.ListLocksRequest:
		v.name("prefix", m.GetPrefix(), false)
		p = m
	case *zkcoordv1.ListSemaphoresRequest:
		v.name("prefix", m.GetPrefix(), false)
		p = m
	case *zkcoordv1.ListLeasesRequest:
		p, key = m, true
	case *zkcoordv1.ListReplicasRequest:
		return true
	default:
		return false
	}
	if n := p.GetPageSize(); n < 0 || n > MaxPageSize {
		v.addf("page_size", "must be between 0 and %d, not %d", MaxPageSize, n)
	}
	switch t := p.GetPageToken(); {
	case t == "":
	case key && !validLeaseID(t): // a key has an ID's form
		v.add("page_token", "must be a next_page_token of ListLeases: 32 lowercase hex characters")
	case !key && !validName(t):
		v.add("page_token", "must be a next_page_token of the same list (the last name of a page)")
	}
	return true
}
