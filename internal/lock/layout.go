package lock

import "path"

// Layout names the locks' znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/locks                           no data; written to order sequencer checks
//	<root>/locks/<name>/<m>_<key>_<seq>    a lease's place in the lock's queue (m: x exclusive, s shared)
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Locks is the directory of locks; its data is written (a quorum write)
// to order a sequencer check after every committed change.
func (l Layout) Locks() string { return path.Join(l.Root, "locks") }

// Lock is the directory of lock name's queue.
func (l Layout) Lock(name string) string { return path.Join(l.Root, "locks", name) }
