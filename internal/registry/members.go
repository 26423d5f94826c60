package registry

import "github.com/google/btree"

// members is a group's members sorted by ID: a B-tree (google/btree, the
// index etcd's MVCC store keeps its keys in) rather than a map, for two
// reasons. A sorted tree gives a whole-group read in ID order without a
// sort (a map needed O(n log n) per snapshot: 1,000,000 members took
// seconds), and a page from any ID in O(log n). And its Clone is O(1) and
// copy-on-write: a Snapshot holds the group at one revision while the
// cache goes on changing, paying only for the nodes that change after it
// (a few per write), so a reader can page through a fixed revision.
type members = btree.BTreeG[*Member]

// degree is the B-tree's: nodes of up to 63 members.
const degree = 32

func byID(a, b *Member) bool { return a.ID < b.ID }

// newMembers returns an empty member tree.
func newMembers() *members { return btree.NewG(degree, byID) }

// getMember returns the member id of t.
func getMember(t *members, id string) (*Member, bool) {
	return t.Get(&Member{ID: id})
}
