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

// ledKey names a candidacy for led: its path and its token, which tell it
// from a candidacy of the same path in an election directory recreated.
func ledKey(path string, token int64) string { return path + "@" + strconv.FormatInt(token, 10) }
