// Package lease keeps zkcoord's leases: a TTL that clients renew with cheap
// in-memory keepalives, and a set of znodes the lease owns that the gateway
// deletes, in one ZooKeeper transaction, when the lease is revoked or its TTL
// lapses. Lease records live in ZooKeeper (see zkx.Layout) so a restarted
// gateway adopts the leases it finds without an owner.
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
	// ErrOwnedElsewhere: another gateway replica owns the lease.
	ErrOwnedElsewhere = errors.New("lease: owned by another gateway replica")
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("lease: manager closed")
)

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

// Manager grants, renews and ends leases.
type Manager struct {
	sess *zkx.Session
	lay  zkx.Layout
	log  *slog.Logger

	mu     sync.Mutex
	leases map[string]*entry // by key
	kinds  map[string]ReleaseFunc
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

type entry struct {
	id  string
	key string
	ttl time.Duration

	// op serializes attach/detach against release of this lease.
	op      sync.Mutex
	expires time.Time // guarded by Manager.mu
	timer   *time.Timer
	ended   bool // guarded by Manager.mu
}

type record struct {
	TTLMillis int64     `json:"ttl_ms"`
	Granted   time.Time `json:"granted"`
}

// NewManager returns a Manager keeping leases under lay.Root.
func NewManager(sess *zkx.Session, lay zkx.Layout, log *slog.Logger) *Manager {
	return &Manager{sess: sess, lay: lay, log: log, leases: map[string]*entry{},
		kinds: map[string]ReleaseFunc{}, stop: make(chan struct{})}
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

// Start creates the leases directory and adopts every lease found without an
// owner (left by a gateway that stopped), giving it a fresh TTL.
func (m *Manager) Start(ctx context.Context) error {
	c := m.sess.Conn()
	if err := zkx.EnsurePath(c, m.lay.Leases()); err != nil {
		return fmt.Errorf("lease: create %s: %w", m.lay.Leases(), err)
	}
	keys, _, err := c.Children(m.lay.Leases())
	if err != nil {
		return fmt.Errorf("lease: list leases: %w", err)
	}
	for _, key := range keys {
		if _, err := m.adopt(key, ""); err != nil && !errors.Is(err, ErrOwnedElsewhere) && !errors.Is(err, ErrNotFound) {
			m.log.Warn("lease: adopt failed", "lease", key, "err", err)
		}
	}
	m.wg.Add(1)
	go m.guardOwners()
	return nil
}

// guardOwners re-creates the owner nodes of held leases after the ZooKeeper
// session expired (they were ephemerals of the old session), so no other
// replica adopts a lease this gateway still keeps alive.
func (m *Manager) guardOwners() {
	defer m.wg.Done()
	st, ch := m.sess.Watch()
	epoch := st.Epoch
	for {
		select {
		case <-m.stop:
			return
		case <-ch:
		}
		st, ch = m.sess.Watch()
		if st.State != zkx.StateConnected || st.Epoch == epoch {
			continue
		}
		epoch = st.Epoch
		m.mu.Lock()
		keys := make([]string, 0, len(m.leases))
		for k := range m.leases {
			keys = append(keys, k)
		}
		m.mu.Unlock()
		owner := []byte(fmt.Sprintf("%x", st.SessionID))
		for _, k := range keys {
			_, err := m.sess.Conn().Create(m.lay.LeaseOwner(k), owner, zk.FlagEphemeral, zkx.ACL)
			if err != nil && !errors.Is(err, zk.ErrNoNode) {
				m.log.Warn("lease: re-create owner after session expiry", "lease", k, "err", err)
			}
		}
		m.log.Info("lease: owners re-created after session expiry", "leases", len(keys))
	}
}

// Grant creates a lease with the given TTL.
func (m *Manager) Grant(ctx context.Context, ttl time.Duration) (Lease, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Lease{}, err
	}
	id := hex.EncodeToString(b[:])
	key := KeyOf(id)
	data, _ := json.Marshal(record{TTLMillis: ttl.Milliseconds(), Granted: time.Now().UTC()})
	c := m.sess.Conn()
	if _, err := c.Multi(
		&zk.CreateRequest{Path: m.lay.Lease(key), Data: data, Acl: zkx.ACL},
		&zk.CreateRequest{Path: m.lay.LeaseOwner(key), Data: []byte(fmt.Sprintf("%x", m.sess.Status().SessionID)), Acl: zkx.ACL, Flags: zk.FlagEphemeral},
	); err != nil {
		return Lease{}, fmt.Errorf("lease: grant: %w", err)
	}
	e := &entry{id: id, key: key, ttl: ttl}
	return m.track(e)
}

// track starts the expiry timer of a lease this gateway now owns.
func (m *Manager) track(e *entry) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	if old, ok := m.leases[e.key]; ok && !old.ended {
		return m.renewLocked(old), nil
	}
	e.expires = time.Now().Add(e.ttl)
	m.leases[e.key] = e
	e.timer = time.AfterFunc(e.ttl, func() { m.expire(e) })
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}, nil
}

func (m *Manager) renewLocked(e *entry) Lease {
	e.expires = time.Now().Add(e.ttl)
	e.timer.Reset(e.ttl)
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}
}

// lookup finds the live entry for id, comparing the secret in constant time.
func (m *Manager) lookup(id string) (*entry, bool) {
	e, ok := m.leases[KeyOf(id)]
	if !ok || e.ended {
		return nil, false
	}
	if e.id == "" {
		// Adopted at startup, before any client presented the secret; the
		// key is the secret's hash, so a matching key proves it.
		e.id = id
	}
	if subtle.ConstantTimeCompare([]byte(e.id), []byte(id)) != 1 {
		return nil, false
	}
	return e, true
}

// KeepAlive renews the lease: its TTL starts again now. It costs no
// ZooKeeper write. A lease this gateway does not hold in memory is adopted
// from ZooKeeper if no other replica owns it.
func (m *Manager) KeepAlive(ctx context.Context, id string) (Lease, error) {
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
		l := m.renewLocked(e)
		m.mu.Unlock()
		return l, nil
	}
	m.mu.Unlock()
	return m.adopt(KeyOf(id), id)
}

// adopt takes ownership of a lease record that has no owner. id is the secret
// when known (a keepalive), "" at startup.
func (m *Manager) adopt(key, id string) (Lease, error) {
	c := m.sess.Conn()
	data, _, err := c.Get(m.lay.Lease(key))
	if errors.Is(err, zk.ErrNoNode) {
		return Lease{}, ErrNotFound
	} else if err != nil {
		return Lease{}, fmt.Errorf("lease: read %s: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil || rec.TTLMillis <= 0 {
		return Lease{}, fmt.Errorf("lease: corrupt record %s: %q", key, data)
	}
	_, err = c.Create(m.lay.LeaseOwner(key), []byte(fmt.Sprintf("%x", m.sess.Status().SessionID)), zk.FlagEphemeral, zkx.ACL)
	switch {
	case errors.Is(err, zk.ErrNodeExists):
		return Lease{}, ErrOwnedElsewhere
	case errors.Is(err, zk.ErrNoNode):
		return Lease{}, ErrNotFound
	case err != nil:
		return Lease{}, fmt.Errorf("lease: adopt %s: %w", key, err)
	}
	m.log.Info("lease: adopted", "lease", key)
	return m.track(&entry{id: id, key: key, ttl: time.Duration(rec.TTLMillis) * time.Millisecond})
}

// Get returns the lease with the given id if this gateway holds it.
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
	l, err := m.Get(id)
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

// Count returns the number of live leases this gateway holds.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// Attach runs ops in one ZooKeeper transaction together with the creation of
// ref (unless ref is "") and a check that the lease record still exists, so a
// node is never created for a lease that has ended. The responses of ops come
// first in the result.
func (m *Manager) Attach(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	e, err := m.hold(id)
	if err != nil {
		return nil, err
	}
	defer e.op.Unlock()
	all := append([]any{}, ops...)
	all = append(all, &zk.CheckVersionRequest{Path: m.lay.Lease(e.key), Version: -1})
	if ref != "" {
		all = append(all, &zk.CreateRequest{Path: m.lay.LeaseRef(e.key, ref), Acl: zkx.ACL})
	}
	return m.sess.Conn().Multi(all...)
}

// Detach runs ops in one transaction with the deletion of ref.
func (m *Manager) Detach(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	e, err := m.hold(id)
	if err != nil {
		return nil, err
	}
	defer e.op.Unlock()
	all := append(append([]any{}, ops...), &zk.DeleteRequest{Path: m.lay.LeaseRef(e.key, ref), Version: -1})
	return m.sess.Conn().Multi(all...)
}

// hold returns the live entry for id with its op lock held. A lease this
// gateway does not hold is adopted first, if no other replica owns it.
func (m *Manager) hold(id string) (*entry, error) {
	m.mu.Lock()
	e, ok := m.lookup(id)
	m.mu.Unlock()
	if !ok {
		if _, err := m.adopt(KeyOf(id), id); err != nil {
			return nil, err
		}
		m.mu.Lock()
		e, ok = m.lookup(id)
		m.mu.Unlock()
		if !ok {
			return nil, ErrNotFound
		}
	}
	e.op.Lock()
	m.mu.Lock()
	ended := e.ended || time.Now().After(e.expires)
	m.mu.Unlock()
	if ended {
		e.op.Unlock()
		return nil, ErrNotFound
	}
	return e, nil
}

// Revoke ends the lease now and deletes everything it owns.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	m.mu.Lock()
	e, ok := m.lookup(id)
	if ok {
		e.ended = true
		e.timer.Stop()
	}
	m.mu.Unlock()
	if !ok {
		// A lease left by a stopped gateway: adopt it, then revoke.
		if _, err := m.adopt(KeyOf(id), id); err != nil {
			return err
		}
		return m.Revoke(ctx, id)
	}
	return m.release(ctx, e)
}

// expire runs when e's timer fires.
func (m *Manager) expire(e *entry) {
	m.mu.Lock()
	if e.ended || m.closed || time.Now().Before(e.expires) {
		m.mu.Unlock()
		return
	}
	e.ended = true
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	m.log.Info("lease: expired", "lease", e.key, "ttl", e.ttl)
	if err := m.release(ctx, e); err != nil {
		m.log.Warn("lease: release after expiry failed", "lease", e.key, "err", err)
	}
}

// release deletes everything e owns, then the lease record. It retries while
// ZooKeeper is unreachable, until ctx is done.
func (m *Manager) release(ctx context.Context, e *entry) error {
	e.op.Lock()
	defer e.op.Unlock()
	err := zkx.Retry(ctx, func() error { return m.releaseOnce(e.key) })
	m.mu.Lock()
	if m.leases[e.key] == e {
		delete(m.leases, e.key)
	}
	m.mu.Unlock()
	return err
}

func (m *Manager) releaseOnce(key string) error {
	c := m.sess.Conn()
	refs, _, err := c.Children(m.lay.Lease(key))
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	} else if err != nil {
		return err
	}
	var all []any
	var per [][]any
	for _, ref := range refs {
		if ref == "owner" {
			continue
		}
		ops, err := m.releaseOps(key, ref)
		if err != nil {
			return err
		}
		ops = append(ops, &zk.DeleteRequest{Path: m.lay.LeaseRef(key, ref), Version: -1})
		all = append(all, ops...)
		per = append(per, ops)
	}
	tail := []any{
		&zk.DeleteRequest{Path: m.lay.LeaseOwner(key), Version: -1},
		&zk.DeleteRequest{Path: m.lay.Lease(key), Version: -1},
	}
	_, err = c.Multi(append(all, tail...)...)
	if err == nil || zkx.Transient(err) {
		return err
	}
	// Something changed under us (a node already gone, the owner lost with
	// an expired session): release ref by ref, then the record.
	for _, ops := range per {
		if _, err := c.Multi(ops...); err != nil {
			if zkx.Transient(err) {
				return err
			}
			last := ops[len(ops)-1].(*zk.DeleteRequest)
			if err := c.Delete(last.Path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return err
			}
		}
	}
	for _, op := range tail {
		d := op.(*zk.DeleteRequest)
		if err := c.Delete(d.Path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			if errors.Is(err, zk.ErrNotEmpty) {
				return m.releaseOnce(key) // a ref was attached meanwhile
			}
			return err
		}
	}
	return nil
}

func (m *Manager) releaseOps(key, ref string) ([]any, error) {
	parts := strings.Split(ref, "~")
	m.mu.Lock()
	fn := m.kinds[parts[0]]
	m.mu.Unlock()
	if fn == nil {
		m.log.Warn("lease: unknown ref kind", "lease", key, "ref", ref)
		return nil, nil
	}
	return fn(key, parts[1:])
}

// Close stops the expiry timers and waits for releases in progress. Leases
// stay in ZooKeeper; the owner nodes vanish with the session, and the next
// gateway adopts them.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, e := range m.leases {
		e.timer.Stop()
	}
	close(m.stop)
	m.mu.Unlock()
	m.wg.Wait()
}
