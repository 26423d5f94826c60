package barrier

import "path"

// Layout names the barriers' znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/barriers/<b>         a barrier (data: its threshold)
//	<root>/barriers/<b>/p-<id>  its participants (data: the owning lease's key)
//	<root>/barriers/<b>/ready   created once the threshold is reached
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Barrier is barrier b's znode ("" names the directory of barriers).
func (l Layout) Barrier(b string) string { return path.Join(l.Root, "barriers", b) }

// Participant is participant id's znode in barrier b.
func (l Layout) Participant(b, id string) string { return path.Join(l.Root, "barriers", b, "p-"+id) }

// Ready is barrier b's release node.
func (l Layout) Ready(b string) string { return path.Join(l.Root, "barriers", b, "ready") }
