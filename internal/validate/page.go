package validate

import zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"

// Pages of a group's members: a whole-group Lookup, a paged WatchGroup
// snapshot.
const (
	// DefaultMemberPage and MaxMemberPage are the members of one page when
	// the request names no size, and at most; MaxMemberPageBytes bounds a
	// page's size (half of gRPC's default 4 MiB limit).
	DefaultMemberPage  = 10000
	MaxMemberPage      = 50000
	MaxMemberPageBytes = 2 << 20
	// MaxPageTokenLen is the longest page token of a Lookup.
	MaxPageTokenLen = 1024
)

// memberPage checks the size of a page of members: 0 (the default) to
// MaxMemberPage.
func (v *violations) memberPage(field string, n int32) {
	if n < 0 || n > MaxMemberPage {
		v.addf(field, "must be between 0 and %d, not %d", MaxMemberPage, n)
	}
}

// lookupPage checks a Lookup's paging: its page size, and a page token
// only where it means something (its content is the gateway's to check:
// it signs it).
func (v *violations) lookupPage(m *zkcoordv1.LookupRequest) {
	v.memberPage("page_size", m.GetPageSize())
	switch t := m.GetPageToken(); {
	case t == "":
	case len(t) > MaxPageTokenLen:
		v.addf("page_token", "must be a next_page_token of Lookup (at most %d characters)", MaxPageTokenLen)
	case m.GetMemberId() != "":
		v.add("page_token", "reads the next page of a whole group: not with member_id")
	case m.GetWait().AsDuration() > 0:
		v.add("page_token", "reads the next page at the revision of the first: not with wait")
	}
}
