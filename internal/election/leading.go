package election

import (
	"strconv"
	"sync"
	"time"
)

// leading remembers, by election and lease key, the candidate znode of
// each candidacy whose campaign on this gateway reported it Elected: such
// a candidacy leads until its znode goes, so Resign can delete it without
// listing the election first. The zero value is ready to use.
type leading struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *leading) set(key, path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]string{}
	}
	l.m[key] = path
}

func (l *leading) get(key string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.m[key]
	return p, ok
}

// drop forgets key if it still names path (a newer candidacy of the same
// lease may have replaced it).
func (l *leading) drop(key, path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[key] == path {
		delete(l.m, key)
	}
}

// ledMemory is how long led remembers a leader: long enough for the
// candidate behind it to see its znode deleted (moments, unless this
// gateway is cut off from ZooKeeper that long, when it lists instead).
const ledMemory = time.Minute

// led remembers for ledMemory the candidacies (by znode path and token)
// whose campaign on this gateway reported them Elected. The candidate just
// behind one of them knows it is first when that one is deleted: no one
// was ahead of a leader, and no one can get between (sequence numbers only
// grow); it takes over with one read of itself instead of a listing and
// that read. The zero value is ready to use.
type led struct {
	mu    sync.Mutex
	at    map[string]time.Time
	order []ledEntry // oldest first
}

type ledEntry struct {
	key string
	at  time.Time
}

// ledKey names a candidacy for led: its path and its token, which tell it
// from a candidacy of the same path in an election directory recreated.
func ledKey(path string, token int64) string { return path + "@" + strconv.FormatInt(token, 10) }

// add notes that key leads, and forgets what is older than ledMemory.
func (l *led) add(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[string]time.Time{}
	}
	for len(l.order) > 0 && now.Sub(l.order[0].at) > ledMemory {
		if old := l.order[0]; l.at[old.key] == old.at {
			delete(l.at, old.key)
		}
		l.order = l.order[1:]
	}
	l.at[key] = now
	l.order = append(l.order, ledEntry{key, now})
}

// has reports whether key was noted as leading within ledMemory.
func (l *led) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.at[key]
	return ok && time.Since(at) <= ledMemory
}
