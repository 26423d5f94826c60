package zktest

import "path"

// Layout names every znode zkcoord uses under a root, for tests that read
// ZooKeeper directly. The recipes each own their part (lease.Layout,
// registry.Layout, election.Layout, barrier.Layout, lock.Layout,
// semaphore.Layout);
// this mirrors them (zktest cannot import them: their own tests import
// zktest), and server's TestHarnessLayoutMatches checks that it does.
type Layout struct {
	// Root is the absolute path of zkcoord's namespace, chroot included.
	Root string
}

func (l Layout) Leases() string               { return path.Join(l.Root, "leases") }
func (l Layout) Lease(key string) string      { return path.Join(l.Root, "leases", key) }
func (l Layout) LeaseOwner(key string) string { return path.Join(l.Root, "leases", key, "owner") }
func (l Layout) LeaseRef(key, ref string) string {
	return path.Join(l.Root, "leases", key, ref)
}
func (l Layout) Replicas() string           { return path.Join(l.Root, "replicas") }
func (l Layout) Replica(id string) string   { return path.Join(l.Root, "replicas", id) }
func (l Layout) ReadBarrier() string        { return path.Join(l.Root, "sync") }
func (l Layout) Groups() string             { return path.Join(l.Root, "groups") }
func (l Layout) Group(g string) string      { return path.Join(l.Root, "groups", g) }
func (l Layout) Members(g string) string    { return path.Join(l.Root, "groups", g, "members") }
func (l Layout) Member(g, id string) string { return path.Join(l.Root, "groups", g, "members", id) }
func (l Layout) Log(g string) string        { return path.Join(l.Root, "groups", g, "log") }
func (l Layout) Election(e string) string   { return path.Join(l.Root, "elections", e) }
func (l Layout) Barrier(b string) string    { return path.Join(l.Root, "barriers", b) }
func (l Layout) Participant(b, id string) string {
	return path.Join(l.Root, "barriers", b, "p-"+id)
}
func (l Layout) Ready(b string) string { return path.Join(l.Root, "barriers", b, "ready") }
func (l Layout) Elections() string     { return path.Join(l.Root, "elections") }
func (l Layout) Locks() string         { return path.Join(l.Root, "locks") }
func (l Layout) Lock(name string) string {
	return path.Join(l.Root, "locks", name)
}
func (l Layout) Semaphore(s string) string { return path.Join(l.Root, "semaphores", s) }
