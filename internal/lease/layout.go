package lease

import "path"

// Layout names the lease's znodes under zkcoord's root (docs/LAYOUT.md):
//
//	<root>/leases/<key>                 the lease record (persistent)
//	<root>/leases/<key>/owner           ephemeral of the owning replica (data: its id)
//	<root>/leases/<key>/<kind>~<a>~<b>  one ref per znode the lease owns
//	<root>/replicas/<id>                ephemeral per live replica (data: its address)
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

// Leases is the directory of lease records.
func (l Layout) Leases() string { return path.Join(l.Root, "leases") }

// Lease is the record of the lease with key.
func (l Layout) Lease(key string) string { return path.Join(l.Root, "leases", key) }

// Owner is the ephemeral owner node of the lease with key.
func (l Layout) Owner(key string) string { return path.Join(l.Root, "leases", key, "owner") }

// Ref is one ref of the lease with key.
func (l Layout) Ref(key, ref string) string { return path.Join(l.Root, "leases", key, ref) }

// Replicas is the directory of live replicas.
func (l Layout) Replicas() string { return path.Join(l.Root, "replicas") }

// Replica is the announcement of the replica with id.
func (l Layout) Replica(id string) string { return path.Join(l.Root, "replicas", id) }
