package registry

// WithAfterMemberRead calls fn after each member read while a group cache
// loads or rereads its group, with the number of members read so far:
// tests change the group in the middle of such a read.
func WithAfterMemberRead(fn func(group string, n int)) Option {
	return func(o *options) error {
		o.afterMemberRead = fn
		return nil
	}
}

// Waiters returns how many Polls wait on r's cache of group.
func Waiters(r *Registry, group string) int {
	r.mu.Lock()
	g, ok := r.groups[group]
	r.mu.Unlock()
	if !ok {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiters
}
