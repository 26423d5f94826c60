package registry

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync/atomic"
	"time"
)

// Member is one registration in a group.
type Member struct {
	Group      string
	ID         string
	Value      string
	Metadata   map[string]string
	Persistent bool
	// Lease is the public key of the owning lease ("" when persistent).
	Lease string
	// CreateRev and ModRev are the ZooKeeper zxids of the member's creation
	// and of its last change.
	CreateRev int64
	ModRev    int64
	CreatedAt time.Time
}

// record is the JSON stored in a member znode.
type record struct {
	Value      string            `json:"value"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Lease      string            `json:"lease,omitempty"`
	Persistent bool              `json:"persistent,omitempty"`
	// Holder is the principal that registered a persistent member (""
	// without auth): only it, or an admin, may change or remove it. A
	// leased member's holder is its lease's.
	Holder    string    `json:"holder,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// change is the JSON stored in a journal entry.
type change struct {
	Op        string  `json:"op"` // "put" or "del"
	ID        string  `json:"id"`
	Rec       *record `json:"rec,omitempty"`
	CreateRev int64   `json:"create_rev,omitempty"` // for a put that updates
}

func decodeRecord(data []byte) (record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("registry: corrupt member record %q: %w", data, err)
	}
	return r, nil
}

func (r record) member(group, id string, createRev, modRev int64) *Member {
	return &Member{Group: group, ID: id, Value: r.Value, Metadata: r.Metadata, Persistent: r.Persistent,
		Lease: r.Lease, CreateRev: createRev, ModRev: modRev, CreatedAt: r.CreatedAt}
}

func sameContent(a record, value string, md map[string]string) bool {
	return a.Value == value && maps.Equal(a.Metadata, md)
}

// EventType says what happened to a member.
type EventType int

// Event types, as WatchGroup reports them.
const (
	Joined EventType = iota + 1
	Left
	Updated
)

// Event is one net change of a group, at revision Rev.
type Event struct {
	Type   EventType
	Rev    int64
	Member *Member
	// More is true when the next event has the same revision: one
	// transaction changed several members (a lease's end removes all of
	// them). The group is at Rev only after the event of Rev without More.
	More bool

	enc atomic.Pointer[[]byte] // Encoded's memo
}

// Encoded returns enc(e), computed once for the event: every watcher of a
// group is handed the same *Event, so a sender that encodes it for each of
// its watchers (thousands of streams) encodes it once. enc must depend on
// e alone, and its result must not be changed; two callers racing may
// both compute it, and both get the first result stored.
func (e *Event) Encoded(enc func(*Event) []byte) []byte {
	if b := e.enc.Load(); b != nil {
		return *b
	}
	b := enc(e)
	e.enc.CompareAndSwap(nil, &b)
	return *e.enc.Load()
}
