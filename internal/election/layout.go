package election

import "path"

// Layout names the elections' znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/elections/<e>/c_<key>_<seq>  candidates; the lowest sequence leads
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Elections is the directory of elections.
func (l Layout) Elections() string { return path.Join(l.Root, "elections") }

// Election is the directory of election e's candidates.
func (l Layout) Election(e string) string { return path.Join(l.Root, "elections", e) }
