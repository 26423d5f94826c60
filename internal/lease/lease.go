// Package lease keeps zkcoord's leases: a TTL that clients renew with cheap
// in-memory keepalives, and a set of znodes the lease owns that the gateway
// deletes, in one ZooKeeper transaction, when the lease is revoked or its TTL
// lapses.
//
// Lease records live in ZooKeeper (see zkx.Layout) and each is owned by one
// gateway replica at a time: an ephemeral owner node guards against two
// replicas taking it, and every change of owner bumps the record's version,
// which fences the previous owner's writes (docs/REPLICAS.md).
package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by the Manager.
var (
	// ErrNotFound: the lease never existed, was revoked, or its TTL lapsed.
	ErrNotFound = errors.New("lease: not found or expired")
	// ErrOwnedElsewhere: another gateway replica owns the lease (see
	// OwnedError for which).
	ErrOwnedElsewhere = errors.New("lease: owned by another gateway replica")
	// ErrDraining: this replica is handing its leases over and takes no new
	// ones; retry on another replica.
	ErrDraining = errors.New("lease: gateway draining, retry on another replica")
	// ErrUnreachable: this replica has lost ZooKeeper; retry on another.
	ErrUnreachable = errors.New("lease: gateway lost its ZooKeeper connection, retry on another replica")
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("lease: manager closed")
)

// ErrTooMany: the holder already holds its limit of leases here (see
// LimitError).
var ErrTooMany = errors.New("lease: holder at its lease limit")

// LimitError names the holder at its limit, and the limit.
type LimitError struct {
	Holder string
	Limit  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %q holds %d leases on this replica", ErrTooMany, e.Holder, e.Limit)
}

func (e *LimitError) Is(target error) bool { return target == ErrTooMany }

// OwnedError names the replica that owns a lease.
type OwnedError struct{ Replica string }

func (e *OwnedError) Error() string { return fmt.Sprintf("%v: %s", ErrOwnedElsewhere, e.Replica) }

// Is makes errors.Is(err, ErrOwnedElsewhere) true.
func (e *OwnedError) Is(target error) bool { return target == ErrOwnedElsewhere }

// Lease describes a live lease.
type Lease struct {
	// ID is the secret the client holds. It never reaches ZooKeeper.
	ID string
	// Key is the public name of the lease: hex of the first 16 bytes of
	// SHA-256(ID). Znodes and records name leases by Key.
	Key       string
	TTL       time.Duration
	ExpiresAt time.Time
}

// ReleaseFunc returns the ZooKeeper ops that remove what a ref names (the
// ref's parts after the kind), for the lease with the given key. It may read
// ZooKeeper; it returns no ops when the thing is already gone.
type ReleaseFunc func(leaseKey string, parts []string) ([]any, error)

// Peers reaches the replica that owns a lease, for the Manager of another
// replica: KeepAlive forwards a keepalive (no ZooKeeper write), Handoff asks
// the owner to give the lease up so that this replica can adopt it.
type Peers interface {
	KeepAlive(ctx context.Context, replica, id string) (Lease, error)
	Handoff(ctx context.Context, replica, id string) error
	Get(ctx context.Context, replica, id string) (Lease, error)
}

// Manager grants, renews and ends leases.
type Manager struct {
	sess *zkx.Session
	lay  zkx.Layout
	log  *slog.Logger
	opts options

	// gate orders Drain after the grants and adoptions in flight: they
	// hold it shared from their accepting check until the lease is
	// tracked, so Drain hands off every lease this replica ends up owning.
	gate sync.RWMutex

	mu       sync.Mutex
	leases   map[string]*entry // by key
	held     map[string]int    // leases tracked, by holder
	reserved map[string]int    // grants in flight, by holder
	kinds    map[string]ReleaseFunc
	draining bool
	closed   bool
	wg       sync.WaitGroup
	// ctx ends when the Manager closes: it bounds releases, sweeps and the
	// Manager's goroutines.
	ctx    context.Context
	cancel context.CancelFunc
}

type entry struct {
	id     string
	key    string
	ttl    time.Duration
	holder string // whom the lease is counted under (see GrantFor)

	// op serializes attach/detach/handoff against release of this lease.
	op      sync.Mutex
	recVer  int32     // version of the lease record when we took it: our fence
	pinned  bool      // guarded by Manager.mu: the record holds the lease's expiry, cleared at the next renewal
	expires time.Time // guarded by Manager.mu
	timer   *time.Timer
	mark    *time.Timer // fires when the lease went half its TTL unrenewed: persist its expiry
	ended   bool        // guarded by Manager.mu: released, handed off or lost

	// refs are the refs this lease owns, known only for a lease granted
	// here (an adopted one's are in ZooKeeper, not here); guarded by
	// Manager.mu. A hint: ZooKeeper checks every write anyway.
	refs map[string]struct{}
}

// record is the lease record's JSON.
type record struct {
	TTLMillis int64     `json:"ttl_ms"`
	Granted   time.Time `json:"granted"`
	// Owner is the replica that owns the lease; "" while handed off.
	Owner string `json:"owner,omitempty"`
	// Holder is the principal the lease was granted to ("" without auth).
	Holder string `json:"holder,omitempty"`
	// Expires is set when a replica hands the lease off: when it ends unless
	// kept alive.
	Expires time.Time `json:"expires,omitzero"`
}

// Option configures a Manager.
type Option func(*options)

type options struct {
	replica string
	sweep   time.Duration
	peers   Peers
}

// WithReplicaID names this replica in the lease records it owns (default
// hostname-pid).
func WithReplicaID(id string) Option { return func(o *options) { o.replica = id } }

// WithSweepInterval sets how often the Manager looks for leases whose owner
// vanished, besides when a replica leaves (default 30s).
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweep = d } }

// WithPeers lets the Manager forward keepalives to, and request handoffs
// from, the replica that owns a lease.
func WithPeers(p Peers) Option { return func(o *options) { o.peers = p } }

// NewManager returns a Manager keeping leases under lay.Root.
func NewManager(sess *zkx.Session, lay zkx.Layout, log *slog.Logger, opt ...Option) *Manager {
	host, _ := os.Hostname()
	o := options{replica: fmt.Sprintf("%s-%d", host, os.Getpid()), sweep: 30 * time.Second}
	for _, fn := range opt {
		fn(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{sess: sess, lay: lay, log: log, opts: o, leases: map[string]*entry{}, held: map[string]int{}, reserved: map[string]int{},
		kinds: map[string]ReleaseFunc{}, ctx: ctx, cancel: cancel}
}

// Handle registers how to release refs of a kind ("member", "candidate",
// "participant"). Call before Start.
func (m *Manager) Handle(kind string, fn ReleaseFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds[kind] = fn
}

// KeyOf returns the public key of a lease id.
func KeyOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// Ref builds a ref name from a kind and its parts.
func Ref(kind string, parts ...string) string {
	return strings.Join(append([]string{kind}, parts...), "~")
}

// Replica returns this replica's id.
func (m *Manager) Replica() string { return m.opts.replica }

// Start creates the leases directory, adopts the leases found without an
// owner, and starts the goroutines that keep ownership: re-taking owner
// nodes after a session expiry, and adopting leases whose owner vanished.
func (m *Manager) Start(ctx context.Context) error {
	c := m.sess.Conn()
	for _, p := range []string{m.lay.Leases(), m.lay.Replicas()} {
		if err := zkx.EnsurePath(c, p, m.sess.ACL()); err != nil {
			return fmt.Errorf("lease: create %s: %w", p, err)
		}
	}
	// Watch the replicas before sweeping, so a replica that leaves after
	// the sweep is noticed.
	_, _, ch, err := c.ChildrenW(m.lay.Replicas())
	if err != nil {
		return fmt.Errorf("lease: watch replicas: %w", err)
	}
	if err := m.sweepOrphans(); err != nil {
		return fmt.Errorf("lease: adopt orphans: %w", err)
	}
	m.wg.Add(2)
	go m.guardOwners()
	go m.sweeper(ch)
	return nil
}

// Grant creates a lease with the given TTL, owned by this replica.
func (m *Manager) Grant(ctx context.Context, ttl time.Duration) (Lease, error) {
	return m.GrantFor(ctx, ttl, "", -1)
}

// GrantFor creates a lease for holder, who may hold at most limit leases
// on this replica (granted here or adopted; limit < 0: any number). A
// holder at its limit gets a *LimitError.
func (m *Manager) GrantFor(ctx context.Context, ttl time.Duration, holder string, limit int) (Lease, error) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if err := m.accepting(); err != nil {
		return Lease{}, err
	}
	if err := m.reserve(holder, limit); err != nil {
		return Lease{}, err
	}
	defer m.unreserve(holder)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Lease{}, err
	}
	id := hex.EncodeToString(b[:])
	key := KeyOf(id)
	data, _ := json.Marshal(record{TTLMillis: ttl.Milliseconds(), Granted: time.Now().UTC(), Owner: m.opts.replica, Holder: holder})
	if _, err := m.sess.Conn().Multi(
		&zk.CreateRequest{Path: m.lay.Lease(key), Data: data, Acl: m.sess.ACL()},
		&zk.CreateRequest{Path: m.lay.LeaseOwner(key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
	); err != nil {
		if zkx.Transient(err) {
			// The grant may have committed before the connection broke:
			// remove it in the background, as no client will ever use it.
			e := &entry{key: key, recVer: 0}
			m.background(func(bg context.Context) { _ = zkx.Retry(bg, func() error { return m.releaseOnce(e) }) })
		}
		return Lease{}, fmt.Errorf("lease: grant: %w", err)
	}
	return m.track(&entry{id: id, key: key, ttl: ttl, holder: holder, recVer: 0, refs: map[string]struct{}{}}, time.Now().Add(ttl))
}

// reserve counts a grant in flight for holder, or refuses it at the limit.
func (m *Manager) reserve(holder string, limit int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit >= 0 && m.held[holder]+m.reserved[holder] >= limit {
		return &LimitError{Holder: holder, Limit: limit}
	}
	m.reserved[holder]++
	return nil
}

func (m *Manager) unreserve(holder string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reserved[holder]--; m.reserved[holder] <= 0 {
		delete(m.reserved, holder)
	}
}

// count adds d to holder's count; m.mu held.
func (m *Manager) count(holder string, d int) {
	if m.held[holder] += d; m.held[holder] <= 0 {
		delete(m.held, holder)
	}
}

// Owns reports whether the lease owns ref, as far as this replica knows:
// known is false when it cannot tell (the lease is not held here, or was
// adopted with refs it has not read). Callers use it to skip a read before
// a write that ZooKeeper checks anyway.
func (m *Manager) Owns(id, ref string) (owns, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(id)
	if !ok || e.refs == nil {
		return false, false
	}
	_, owns = e.refs[ref]
	return owns, true
}

// noteRef records that e now owns ref (add) or no longer does.
func (m *Manager) noteRef(e *entry, ref string, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.refs == nil {
		return
	}
	if add {
		e.refs[ref] = struct{}{}
	} else {
		delete(e.refs, ref)
	}
}

func (m *Manager) accepting() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.draining:
		return ErrDraining
	}
	return nil
}

// track starts the expiry timer of a lease this replica now owns.
func (m *Manager) track(e *entry, expires time.Time) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	if old, ok := m.leases[e.key]; ok {
		if !old.ended {
			old.timer.Stop()
		}
		m.count(old.holder, -1)
	}
	e.expires = expires
	m.leases[e.key] = e
	m.count(e.holder, 1)
	e.timer = time.AfterFunc(time.Until(expires), func() { m.expire(e) })
	e.mark = time.AfterFunc(time.Until(expires)-e.ttl/2, func() { m.persistExpiry(e) })
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}, nil
}

func (m *Manager) renewLocked(e *entry) Lease {
	e.expires = time.Now().Add(e.ttl)
	e.timer.Reset(e.ttl)
	e.mark.Reset(e.ttl / 2)
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}
}

// lookup finds the live entry for id, comparing the secret in constant time.
func (m *Manager) lookup(id string) (*entry, bool) {
	e, ok := m.leases[KeyOf(id)]
	if !ok || e.ended {
		return nil, false
	}
	if e.id == "" {
		// Adopted before any client presented the secret; the key is the
		// secret's hash, so a matching key proves it.
		e.id = id
	}
	if subtle.ConstantTimeCompare([]byte(e.id), []byte(id)) != 1 {
		return nil, false
	}
	return e, true
}

// KeepAlive renews the lease: its TTL starts again now. It costs no
// ZooKeeper write. A lease owned by another replica is renewed there
// (through Peers); a lease without an owner is adopted.
func (m *Manager) KeepAlive(ctx context.Context, id string) (Lease, error) {
	l, err := m.KeepAliveLocal(ctx, id)
	var owned *OwnedError
	if errors.As(err, &owned) && m.opts.peers != nil {
		return m.opts.peers.KeepAlive(ctx, owned.Replica, id)
	}
	return l, err
}

// KeepAliveLocal renews a lease this replica owns, adopting it if it has no
// owner; it never forwards (peers call it).
//
// It refuses (ErrUnreachable) while this replica is not connected to
// ZooKeeper: its session may expire meanwhile and another replica adopt the
// lease, which must not end earlier than the client was told.
func (m *Manager) KeepAliveLocal(ctx context.Context, id string) (Lease, error) {
	if st := m.sess.Status(); st.State != zkx.StateConnected {
		return Lease{}, ErrUnreachable
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Lease{}, ErrClosed
	}
	if e, ok := m.lookup(id); ok {
		if time.Now().After(e.expires) {
			m.mu.Unlock()
			return Lease{}, ErrNotFound
		}
		pinned := e.pinned
		if !pinned {
			l := m.renewLocked(e)
			m.mu.Unlock()
			return l, nil
		}
		m.mu.Unlock()
		if err := m.unpin(e); err != nil {
			return Lease{}, err
		}
		return m.KeepAliveLocal(ctx, id)
	}
	m.mu.Unlock()
	return m.adopt(KeyOf(id), id)
}

// pinRetry is how soon persistExpiry tries again after ZooKeeper failed it.
const pinRetry = 250 * time.Millisecond

// persistExpiry writes the expiry of a lease that went half its TTL without
// a renewal into its record (one fenced write per such lease; a lease kept
// alive, renewed every third of its TTL, is never written). If this replica
// then dies, the replica that adopts the lease ends it on time.
func (m *Manager) persistExpiry(e *entry) {
	e.op.Lock()
	defer e.op.Unlock()
	m.mu.Lock()
	expires, skip := e.expires, e.ended || e.pinned || m.closed || time.Until(e.expires) > e.ttl/2
	m.mu.Unlock()
	if skip {
		return
	}
	rec, _, err := m.readRecord(e.key)
	if err == nil {
		rec.Expires = expires.UTC()
		data, _ := json.Marshal(rec)
		_, err = m.sess.Conn().Multi(&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer})
	}
	switch {
	case errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, ErrNotFound):
		return // not ours any more
	case err != nil:
		// ZooKeeper unreachable: try again shortly, until the lease ends.
		// Should this replica die before the write lands, the adopter
		// only knows the orphan rule, which ends the lease later.
		m.mu.Lock()
		if !e.ended && !m.closed && time.Now().Before(expires) {
			e.mark.Reset(pinRetry)
		}
		m.mu.Unlock()
		return
	}
	e.recVer++
	m.mu.Lock()
	e.pinned = true
	m.mu.Unlock()
}

// unpin clears the orphan expiry from an adopted lease's record, once, at
// its first renewal (fenced like every write for the lease).
func (m *Manager) unpin(e *entry) error {
	e.op.Lock()
	defer e.op.Unlock()
	m.mu.Lock()
	pinned := e.pinned
	m.mu.Unlock()
	if !pinned {
		return nil
	}
	rec, _, err := m.readRecord(e.key)
	if err != nil {
		return err
	}
	rec.Expires = time.Time{}
	data, _ := json.Marshal(rec)
	if _, err := m.sess.Conn().Multi(&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer}); err != nil {
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
			m.forget(e)
			return &OwnedError{Replica: "another replica"}
		}
		return err
	}
	e.recVer++
	m.mu.Lock()
	e.pinned = false
	m.mu.Unlock()
	return nil
}

// Describe returns the lease with the given id, asking the replica that
// owns it when that is another one. It never renews the lease.
func (m *Manager) Describe(ctx context.Context, id string) (Lease, error) {
	if l, err := m.Get(id); err == nil || m.opts.peers == nil {
		return l, err
	}
	rec, _, err := m.readRecordConfirmed(KeyOf(id))
	if err != nil {
		return Lease{}, err
	}
	owner, _, err := m.sess.Conn().Get(m.lay.LeaseOwner(KeyOf(id)))
	if err != nil || string(owner) == m.opts.replica {
		// No owner: the lease waits for its next keepalive to be adopted.
		if !rec.Expires.IsZero() && time.Now().Before(rec.Expires) {
			return Lease{ID: id, Key: KeyOf(id), TTL: time.Duration(rec.TTLMillis) * time.Millisecond, ExpiresAt: rec.Expires}, nil
		}
		return Lease{}, ErrNotFound
	}
	return m.opts.peers.Get(ctx, string(owner), id)
}

// Get returns the lease with the given id if this replica holds it.
func (m *Manager) Get(id string) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(id)
	if !ok || time.Now().After(e.expires) {
		return Lease{}, ErrNotFound
	}
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}, nil
}

// Owned lists the refs the lease owns.
func (m *Manager) Owned(ctx context.Context, id string) ([]string, error) {
	l, err := m.Describe(ctx, id)
	if err != nil {
		return nil, err
	}
	refs, _, err := m.sess.Conn().Children(m.lay.Lease(l.Key))
	if err != nil {
		return nil, fmt.Errorf("lease: list refs: %w", err)
	}
	out := refs[:0]
	for _, r := range refs {
		if r != "owner" {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Count returns the number of live leases this replica holds.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// Close stops the expiry timers and the Manager's goroutines, and waits for
// releases in progress. Leases stay in ZooKeeper; their owner nodes vanish
// with the session, and another replica adopts them (see Drain for a
// handover without that wait).
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, e := range m.leases {
		e.timer.Stop()
		e.mark.Stop()
	}
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}
