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
