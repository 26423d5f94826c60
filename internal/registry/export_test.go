package registry

// WithAfterMemberRead calls fn after each member read while a group cache
// loads or rereads its group, with the number of reads answered so far
// (members found or not), one call at a time: tests change the group in
// the middle of such a read. Up to pipelinedReads-1 other reads may be
// answered while fn runs.
func WithAfterMemberRead(fn func(group string, n int)) Option {
	return func(o *options) error {
		o.afterMemberRead = fn
		return nil
	}
}

// WithBeforeRefresh calls fn in a group cache's watch loop after its watch
// fired and before it refreshes: a test that blocks in fn holds the cache
// behind ZooKeeper.
func WithBeforeRefresh(fn func(group string)) Option {
	return func(o *options) error {
		o.beforeRefresh = fn
		return nil
	}
}

// WithBeforeEntriesRead calls fn when a group cache's catch-up has listed
// the journal and is about to read the entries it will apply (their
// names): a test can trim one of them in between.
func WithBeforeEntriesRead(fn func(group string, names []string)) Option {
	return func(o *options) error {
		o.beforeEntriesRead = fn
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

// Armed reports whether r's cache of group has a journal watch that has
// not fired since the cache was last refreshed: a linearizable read's
// catch-up then needs no listing.
func Armed(r *Registry, group string) bool {
	r.mu.Lock()
	g, ok := r.groups[group]
	r.mu.Unlock()
	if !ok {
		return false
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if g.armed.ch == nil || r.sess.Link() != g.armed.link {
		return false
	}
	return len(g.armed.ch) == 0
}
