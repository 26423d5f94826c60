// Package registry is the service-discovery recipe: members of named groups,
// owned by a lease or persistent, journaled so that every gateway's cache and
// every watcher sees each net change in order.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by the registry.
var (
	// ErrMemberExists: the member id is held by another lease (or by a
	// persistent registration).
	ErrMemberExists = errors.New("registry: member id held by another owner")
	// ErrMemberNotFound: no such member.
	ErrMemberNotFound = errors.New("registry: member not found")
	// ErrNotOwner: the member belongs to another lease.
	ErrNotOwner = errors.New("registry: member not owned by this lease")
	// ErrConflict: the member kept changing under a register; try again.
	ErrConflict = errors.New("registry: concurrent change, retry")
)

// RefKind is the kind of lease refs that name members.
const RefKind = "member"

// Registry registers members and serves cached views of groups.
type Registry struct {
	sess   *zkx.Session
	lay    Layout
	leases *lease.Manager
	log    *slog.Logger
	opts   options

	ensured  sync.Map // group name → struct{}: its directories exist
	trimmed  sync.Map // group name → int64: journal sequence at the last trim check
	idx      index    // the groups that exist (index.go)
	counters counters // for Stats

	mu     sync.Mutex
	groups map[string]*group
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Registry and registers the member release handler with
// leases, or the error of an option that refused its value. Close stops its
// group caches.
func New(sess *zkx.Session, root string, leases *lease.Manager, log *slog.Logger, opt ...Option) (*Registry, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("registry: root: %w", err)
	}
	o := defaultOptions()
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registry{sess: sess, lay: Layout{Root: root}, leases: leases, log: log, opts: o, groups: map[string]*group{}, ctx: ctx, cancel: cancel}
	leases.Handle(RefKind, r.releaseOps)
	r.wg.Add(1)
	go r.janitor()
	return r, nil
}

// RegisterParams says what to register.
type RegisterParams struct {
	Group    string
	ID       string // "" to generate one
	Value    string
	Metadata map[string]string
	// LeaseID owns the member; empty when Persistent.
	LeaseID    string
	Persistent bool
}

// Register creates or updates a member. Repeating it with the same owner is
// idempotent (no write when nothing changed). A member id held by another
// lease, or a persistent id registered under a lease (and the reverse), is
// refused with ErrMemberExists. It returns the member and the revision
// its state reflects.
//
// When ctx ends first (ZooKeeper slow or unreachable), Register returns
// ctx's error at once and the outcome is unknown: a write already sent may
// still take effect. Repeating the Register settles it.
func (r *Registry) Register(ctx context.Context, p RegisterParams) (*Member, int64, error) {
	if p.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		p.ID = hex.EncodeToString(b[:])
	}
	owner := ""
	if !p.Persistent {
		owner = lease.KeyOf(p.LeaseID)
	}
	if err := r.ensure(ctx, p.Group); err != nil {
		return nil, 0, err
	}
	path := r.lay.Member(p.Group, p.ID)
	// When this gateway's cache of the group lacks the member, or the
	// lease (granted here) has never owned it, create it straight away;
	// ZooKeeper refuses the create if that hint was wrong.
	tryCreate := r.cachedAbsent(p.Group, p.ID)
	if !tryCreate && !p.Persistent {
		owns, known := r.leases.Owns(p.LeaseID, lease.Ref(RefKind, p.Group, p.ID))
		tryCreate = known && !owns
	}
	for attempt := 0; attempt < 8; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		var data []byte
		var stat *zk.Stat
		err := zk.ErrNoNode
		if !tryCreate {
			data, stat, err = r.sess.Get(ctx, path)
		}
		tryCreate = false
		switch {
		case errors.Is(err, zk.ErrNoNode):
			rec := record{Value: p.Value, Metadata: p.Metadata, Lease: owner, Persistent: p.Persistent, CreatedAt: time.Now().UTC()}
			if p.Persistent {
				rec.Holder = callerName(ctx)
			}
			rev, err := r.write(ctx, p, lease.Ref(RefKind, p.Group, p.ID), rec, 0,
				&zk.CreateRequest{Path: path, Data: mustJSON(rec), Acl: r.sess.ACL()})
			if errors.Is(err, zk.ErrNodeExists) {
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			return rec.member(p.Group, p.ID, rev, rev), rev, nil
		case err != nil:
			return nil, 0, fmt.Errorf("registry: read member: %w", err)
		}
		old, err := decodeRecord(data)
		if err != nil {
			return nil, 0, err
		}
		if old.Persistent != p.Persistent || old.Lease != owner {
			return nil, 0, fmt.Errorf("%w: %s/%s", ErrMemberExists, p.Group, p.ID)
		}
		if old.Persistent && !mayChange(ctx, old) {
			return nil, 0, fmt.Errorf("%w: %s/%s was registered by another principal", ErrNotOwner, p.Group, p.ID)
		}
		if sameContent(old, p.Value, p.Metadata) {
			if !p.Persistent { // prove the lease is still live
				if _, err := r.leases.Get(ctx, p.LeaseID); err != nil {
					if _, err := r.leases.KeepAlive(ctx, p.LeaseID); err != nil {
						return nil, 0, err
					}
				}
			}
			return old.member(p.Group, p.ID, stat.Czxid, stat.Mzxid), stat.Mzxid, nil
		}
		rec := old
		rec.Value, rec.Metadata = p.Value, p.Metadata
		rev, err := r.write(ctx, p, "", rec, stat.Czxid,
			&zk.SetDataRequest{Path: path, Data: mustJSON(rec), Version: stat.Version})
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return rec.member(p.Group, p.ID, stat.Czxid, rev), rev, nil
	}
	return nil, 0, ErrConflict
}

// write runs op with its journal entry in one transaction, under the lease
// when the member has one, and returns the transaction's zxid.
func (r *Registry) write(ctx context.Context, p RegisterParams, ref string, rec record, createRev int64, op any) (int64, error) {
	ops := r.journal(p.Group, change{Op: "put", ID: p.ID, Rec: &rec, CreateRev: createRev}, op)
	var res []zk.MultiResponse
	var err error
	if p.Persistent {
		res, err = r.sess.MultiShared(ctx, ops...)
	} else {
		res, err = r.leases.AttachShared(ctx, p.LeaseID, ref, ops...)
	}
	if err != nil {
		return 0, err
	}
	r.maybeTrim(p.Group, res[1].String)
	return res[2].Stat.Mzxid, nil
}

// Deregister removes a member. A lease-owned member can only be removed with
// its lease (ErrNotOwner otherwise); a persistent one with no lease id.
// When ctx ends first, it returns ctx's error at once and the member may
// still be removed (repeat it: ErrMemberNotFound once it is gone).
func (r *Registry) Deregister(ctx context.Context, group, id, leaseID string) (int64, error) {
	path := r.lay.Member(group, id)
	if leaseID != "" {
		// The lease's ref to the member exists exactly while the lease
		// owns it, and Detach deletes it in the same transaction: no read
		// of the member is needed. Any failure takes the careful path,
		// which says why.
		ops := r.journal(group, change{Op: "del", ID: id}, &zk.DeleteRequest{Path: path, Version: -1})
		if res, err := r.leases.DetachShared(ctx, leaseID, lease.Ref(RefKind, group, id), ops...); err == nil {
			return res[2].Stat.Mzxid, nil
		} else if !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
			return 0, err
		}
	}
	data, stat, err := r.sess.Get(ctx, path)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, fmt.Errorf("%w: %s/%s", ErrMemberNotFound, group, id)
	} else if err != nil {
		return 0, fmt.Errorf("registry: read member: %w", err)
	}
	rec, err := decodeRecord(data)
	if err != nil {
		return 0, err
	}
	ops := r.journal(group, change{Op: "del", ID: id}, &zk.DeleteRequest{Path: path, Version: stat.Version})
	var res []zk.MultiResponse
	if rec.Persistent {
		if leaseID != "" {
			return 0, fmt.Errorf("%w: %s/%s is persistent", ErrNotOwner, group, id)
		}
		if !mayChange(ctx, rec) {
			return 0, fmt.Errorf("%w: %s/%s was registered by another principal", ErrNotOwner, group, id)
		}
		res, err = r.sess.MultiShared(ctx, ops...)
	} else {
		if leaseID == "" {
			return 0, fmt.Errorf("%w: %s/%s is owned by a lease; pass its lease_id", ErrNotOwner, group, id)
		}
		if lease.KeyOf(leaseID) != rec.Lease {
			return 0, fmt.Errorf("%w: %s/%s", ErrNotOwner, group, id)
		}
		res, err = r.leases.DetachShared(ctx, leaseID, lease.Ref(RefKind, group, id), ops...)
	}
	if errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrBadVersion) {
		return 0, fmt.Errorf("%w: %s/%s changed concurrently", ErrConflict, group, id)
	}
	if err != nil {
		return 0, err
	}
	return res[2].Stat.Mzxid, nil
}

// callerName is the principal registering, "" without auth.
func callerName(ctx context.Context) string {
	c, _ := lease.CallerFrom(ctx)
	return c.Name
}

// mayChange reports whether the caller of ctx may change or remove a
// persistent member: the principal that registered it, or an admin. (A
// leased member's lease decides: lease.Manager authorizes its holder.)
func mayChange(ctx context.Context, rec record) bool {
	c, ok := lease.CallerFrom(ctx)
	return !ok || c.Admin || c.Name == rec.Holder
}

// releaseOps removes a member when its lease ends (lease.ReleaseFunc).
func (r *Registry) releaseOps(ctx context.Context, leaseKey string, parts []string) ([]any, error) {
	if len(parts) != 2 {
		return nil, nil
	}
	group, id := parts[0], parts[1]
	data, stat, err := r.sess.Get(ctx, r.lay.Member(group, id))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if rec, err := decodeRecord(data); err != nil || rec.Lease != leaseKey {
		return nil, nil // re-registered by someone else meanwhile
	}
	return r.journal(group, change{Op: "del", ID: id}, &zk.DeleteRequest{Path: r.lay.Member(group, id), Version: stat.Version}), nil
}

// ensure creates a group's directories once per gateway. Only writes do:
// reading a group that does not exist creates nothing.
func (r *Registry) ensure(ctx context.Context, group string) error {
	if _, ok := r.ensured.Load(group); ok {
		return nil
	}
	for _, p := range []string{r.lay.Members(group), r.lay.Log(group)} {
		if err := r.sess.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("registry: create %s: %w", p, err)
		}
	}
	r.ensured.Store(group, struct{}{})
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
