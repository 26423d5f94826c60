package semaphore

import "path"

// Layout names the semaphores' znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/semaphores/<s>                 a semaphore (data: its permits, N, in decimal)
//	<root>/semaphores/<s>/s_<key>_<seq>   a slot of the lease with key; the first N by sequence hold a permit
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Semaphores is the directory of semaphores.
func (l Layout) Semaphores() string { return path.Join(l.Root, "semaphores") }

// Semaphore is semaphore s's znode, the directory of its slots.
func (l Layout) Semaphore(s string) string { return path.Join(l.Root, "semaphores", s) }

// Slot is the slot name's znode in semaphore s.
func (l Layout) Slot(s, name string) string { return path.Join(l.Root, "semaphores", s, name) }
