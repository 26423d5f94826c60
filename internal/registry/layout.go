package registry

import "path"

// Layout names the registry's znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/groups/<g>/members/<id>  a member's record
//	<root>/groups/<g>/log/e-<seq>   the group's change journal
//	<root>/sync                     written to order linearizable reads (no data)
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Groups is the directory of groups.
func (l Layout) Groups() string { return path.Join(l.Root, "groups") }

// Group is the directory of group g.
func (l Layout) Group(g string) string { return path.Join(l.Root, "groups", g) }

// Members is the directory of group g's members.
func (l Layout) Members(g string) string { return path.Join(l.Root, "groups", g, "members") }

// Member is the record of member id of group g.
func (l Layout) Member(g, id string) string { return path.Join(l.Root, "groups", g, "members", id) }

// Log is group g's journal directory (the node each cache watches).
func (l Layout) Log(g string) string { return path.Join(l.Root, "groups", g, "log") }

// ReadBarrier is written to order a linearizable read after every
// committed change.
func (l Layout) ReadBarrier() string { return path.Join(l.Root, "sync") }
