package election

import (
	"sync"
	"time"
)

// notes is what a gateway remembers about candidacies between calls:
// which znodes Resign deleted (so their campaigns report Resigned, not
// Lost), and the wake-up channels of running campaigns by election and
// lease key (known before the candidate's znode is).
type notes struct {
	memory time.Duration

	mu       sync.Mutex
	resigned map[string]time.Time
	waiters  map[string]map[chan struct{}]struct{}
}

func newNotes(memory time.Duration) *notes {
	return &notes{memory: memory, resigned: map[string]time.Time{}, waiters: map[string]map[chan struct{}]struct{}{}}
}

// resign notes that Resign is deleting the candidate znode at path; notes
// older than the memory are forgotten.
func (n *notes) resign(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for p, at := range n.resigned {
		if now.Sub(at) > n.memory {
			delete(n.resigned, p)
		}
	}
	n.resigned[path] = now
}

func (n *notes) unresign(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.resigned, path)
}

func (n *notes) wasResigned(path string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.resigned[path]
	return ok
}

// listen returns a channel that wake(election, leaseKey) signals, and its
// cancel.
func (n *notes) listen(election, leaseKey string) (<-chan struct{}, func()) {
	id := election + "/" + leaseKey
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan struct{}]struct{}{}
	}
	n.waiters[id][ch] = struct{}{}
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.waiters[id], ch)
		if len(n.waiters[id]) == 0 {
			delete(n.waiters, id)
		}
	}
}

// wake signals every campaign of the lease in election; signals coalesce.
func (n *notes) wake(election, leaseKey string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[election+"/"+leaseKey] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
