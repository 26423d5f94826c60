package barrier

// Polling returns how many Polls follow barrier name on b, and whether
// their feed has read the barrier.
func Polling(b *Barriers, name string) (polls int, loaded bool) {
	b.mu.Lock()
	f, ok := b.feeds[feedKey{name: name}]
	b.mu.Unlock()
	if !ok {
		return 0, false
	}
	b.mu.Lock()
	polls = f.refs
	b.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	return polls, f.v.loaded
}

// EndAwaitFeed leaves on b, for barrier name, an Awaits' feed that ended
// on seeing the barrier without a znode at revision 1 (as a feed does when
// the last participant leaves just as a new Await comes to it).
func EndAwaitFeed(b *Barriers, name string) {
	k := feedKey{name: name, await: true}
	f := &feed{key: k, cancel: func() {}, changed: make(chan struct{})}
	f.v = view{loaded: true, s: State{Rev: 1}} // no znode: gone
	b.mu.Lock()
	b.feeds[k] = f
	b.mu.Unlock()
}
