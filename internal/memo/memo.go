// Package memo holds what a recipe's gateway remembers between calls:
// which znodes its own calls removed (Removed), so that the streams
// following them report an ending the client asked for (resigned,
// released) rather than a loss, and the wake-up channels of running calls
// by key (Wakers). Election, lock and semaphore share them.
package memo

import (
	"sync"
	"time"
)

// Removed remembers keys (a znode's path, with whatever else tells its
// removals apart) for a while: long enough for the streams that follow
// the znode to see its removal.
type Removed struct {
	memory time.Duration

	mu    sync.Mutex
	at    map[string]time.Time
	order []added // every Add, oldest first: the keys to forget are at its head
	now   func() time.Time
}

// added is one Add: key, at the time it was (re)added.
type added struct {
	key string
	at  time.Time
}

// NewRemoved remembers each key for memory.
func NewRemoved(memory time.Duration) *Removed {
	return &Removed{memory: memory, at: map[string]time.Time{}, now: time.Now}
}

// Add notes that a call is removing key; keys older than the memory are
// forgotten. It costs what it forgets, not what it remembers: every
// Resign of a busy gateway calls it.
func (r *Removed) Add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	i := 0
	for ; i < len(r.order) && now.Sub(r.order[i].at) > r.memory; i++ {
		if e := r.order[i]; r.at[e.key] == e.at { // not added again since, nor forgotten
			delete(r.at, e.key)
		}
	}
	r.order = append(r.order[i:], added{key, now})
	r.at[key] = now
}

// Forget drops key: its removal did not happen.
func (r *Removed) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.at, key)
}

// Has reports whether key was noted, within the memory.
func (r *Removed) Has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[key]
	return ok && r.now().Sub(at) <= r.memory
}

// Wakers are the wake-up channels of running calls, by key. The zero
// value is ready to use.
type Wakers struct {
	mu sync.Mutex
	by map[string]map[chan struct{}]struct{}
}

// Listen returns a channel that Wake(key) signals, and its cancel.
func (w *Wakers) Listen(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.by == nil {
		w.by = map[string]map[chan struct{}]struct{}{}
	}
	if w.by[key] == nil {
		w.by[key] = map[chan struct{}]struct{}{}
	}
	w.by[key][ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.by[key], ch)
		if len(w.by[key]) == 0 {
			delete(w.by, key)
		}
	}
}

// Wake signals every channel listening to key; signals coalesce.
func (w *Wakers) Wake(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.by[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
