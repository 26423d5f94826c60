package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Register adds a member to group, owned by the session's lease, or updates
// it: value is its value, memberID its ID (empty: the gateway generates one;
// the returned member carries it). The member stays while the session
// lives, is registered again with the new lease when the session restores a
// lost lease, and goes when the session is closed or Deregister removes it.
// It fails with ErrAlreadyExists when another owner holds memberID, and with
// ErrLeaseLost when the lease is lost while the session restores it (try
// again after WithOnRestore reports). Cancelling ctx abandons the call: the
// member may or may not be registered.
func (s *Session) Register(ctx context.Context, group, memberID, value string, opts ...RegisterOption) (*zkcoordv1.Member, error) {
	req := newRegisterRequest(group, memberID, value, opts)
	if err := s.ctx.Err(); err != nil {
		return nil, context.Cause(s.ctx)
	}
	if err := s.regs.lock(ctx); err != nil {
		return nil, err
	}
	defer s.regs.unlock()
	req.LeaseId = s.Lease()
	resp, err := s.c.rpc.registry.Register(ctx, req)
	if err != nil {
		err = callErr(ctx, err, ErrLeaseLost)
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		return nil, fmt.Errorf("registry: register %s/%s: %w", group, memberID, err)
	}
	m := resp.GetMember()
	req.MemberId = m.GetId()
	s.regs.put(req)
	return m, nil
}

// Deregister removes a member the session registered, and forgets it: a
// restore does not register it again.
func (s *Session) Deregister(ctx context.Context, group, memberID string) error {
	if err := s.regs.lock(ctx); err != nil {
		return err
	}
	defer s.regs.unlock()
	err := s.c.Deregister(ctx, group, memberID, s.Lease())
	if err == nil || errors.Is(err, ErrNotFound) {
		s.regs.forget(group, memberID)
	}
	return err
}

// reregister registers again, with the current lease, what a restore left
// pending, within timeout so that keepalives go on. Registrations that fail
// for good are dropped; the others stay pending for the next call. When none
// is left it reports the restore to WithOnRestore.
func (s *Session) reregister(ctx context.Context, timeout time.Duration) {
	if !s.regs.restoring() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if s.regs.lock(ctx) != nil {
		return
	}
	defer s.regs.unlock()
	lease := s.Lease()
	for _, req := range s.regs.pendingRequests() {
		req = proto.CloneOf(req)
		req.LeaseId = lease
		_, err := s.c.rpc.registry.Register(ctx, req)
		err = callErr(ctx, err, ErrLeaseLost)
		switch {
		case err == nil:
			s.regs.done(req, nil)
		case ctx.Err() != nil:
			return // out of time: the rest waits for the next keepalive
		case IsTransient(err):
			// Try again after the next keepalive.
		case errors.Is(err, ErrLeaseLost):
			return // the next keepalive finds it and restores again
		default:
			s.c.opts.logger.Warn("zkcoord: dropping a registration the session could not restore",
				"group", req.GetGroup(), "member", req.GetMemberId(), "err", err)
			s.regs.done(req, fmt.Errorf("registry: restore %s/%s: %w", req.GetGroup(), req.GetMemberId(), err))
		}
	}
	if ok, err := s.regs.finish(); ok && s.opts.onRestore != nil {
		s.opts.onRestore(lease, err)
	}
}

// RegisterTTL adds a member to group owned by a new lease of the given TTL,
// which the gateway creates: a one-shot client needs only this call. It
// returns the member and the lease's ID; keep the lease alive with
// KeepAlive, or let the member go when the TTL lapses.
func (c *Client) RegisterTTL(ctx context.Context, group, memberID, value string, ttl time.Duration, opts ...RegisterOption) (*zkcoordv1.Member, string, error) {
	req := newRegisterRequest(group, memberID, value, opts)
	req.Ttl = durationpb.New(ttl)
	resp, err := c.rpc.registry.Register(ctx, req)
	if err != nil {
		return nil, "", fmt.Errorf("registry: register %s/%s: %w", group, memberID, callErr(ctx, err, ErrNotFound))
	}
	return resp.GetMember(), resp.GetLeaseId(), nil
}

// RegisterPersistent adds a persistent member to group, or updates it: it
// belongs to no lease and stays until Deregister removes it.
func (c *Client) RegisterPersistent(ctx context.Context, group, memberID, value string, opts ...RegisterOption) (*zkcoordv1.Member, error) {
	req := newRegisterRequest(group, memberID, value, opts)
	req.Persistent = true
	resp, err := c.rpc.registry.Register(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("registry: register %s/%s: %w", group, memberID, callErr(ctx, err, ErrNotFound))
	}
	return resp.GetMember(), nil
}

// Deregister removes a member; lease is the lease that owns it, empty for a
// persistent member. It fails with ErrNotFound when there is no such member
// (or lease).
func (c *Client) Deregister(ctx context.Context, group, memberID, lease string) error {
	_, err := c.rpc.registry.Deregister(ctx, &zkcoordv1.DeregisterRequest{Group: group, MemberId: memberID, LeaseId: lease})
	if err != nil {
		return fmt.Errorf("registry: deregister %s/%s: %w", group, memberID, callErr(ctx, err, ErrNotFound))
	}
	return nil
}

// Lookup reads the members of group, sorted by ID, and the revision the
// answer reflects. A group that does not exist has no members. With
// Member(id) it reads one member, failing with ErrNotFound when it does not
// exist; with Linearizable it sees every change made before the call. A
// large group comes from the gateway in pages (of PageSize members, and
// at most 2 MiB, within gRPC's default message limit): Lookup reads them
// all, at the first page's revision, and returns them together.
//
// With AfterRevision(rev) and Wait(d) it is a blocking query: the gateway
// answers once the group has changed after rev, or after d. A loop that
// passes each answer's revision to the next Lookup follows the group
// without a stream (WatchGroup is the better tool for a process that can
// hold one):
//
//	var rev int64
//	for {
//		members, next, err := c.Lookup(ctx, "web", client.AfterRevision(rev), client.Wait(time.Minute))
//		if err != nil { ... back off, then retry ... }
//		if next < rev { next = 0 } // another history: start again
//		... use members ...
//		rev = next
//	}
func (c *Client) Lookup(ctx context.Context, group string, opts ...LookupOption) ([]*zkcoordv1.Member, int64, error) {
	var o lookupOptions
	for _, opt := range opts {
		opt.applyLookup(&o)
	}
	req := &zkcoordv1.LookupRequest{Group: group, MemberId: o.memberID, AfterRevision: o.poll.after, Wait: o.poll.waitPB(),
		PageSize: o.pageSize}
	if o.memberID == "" && req.PageSize == 0 {
		req.PageSize = DefaultPageSize // pages: a group of any size fits the default message limit
	}
	if o.linearizable {
		req.Consistency = zkcoordv1.Consistency_CONSISTENCY_LINEARIZABLE
	}
	resp, err := c.rpc.registry.Lookup(ctx, req)
	if err != nil {
		return nil, 0, fmt.Errorf("registry: lookup %s: %w", group, callErr(ctx, err, ErrNotFound))
	}
	if o.memberID != "" && len(resp.GetMembers()) == 0 { // a gateway may answer an empty list
		return nil, resp.GetRevision(), fmt.Errorf("registry: lookup %s/%s: %w", group, o.memberID, ErrNotFound)
	}
	members, err := c.nextPages(ctx, req, resp)
	if err != nil {
		return nil, 0, fmt.Errorf("registry: lookup %s: %w", group, err)
	}
	return members, resp.GetRevision(), nil
}

// nextPages reads the pages after resp, the first page of req, and
// returns the members of them all, at resp's revision. When the gateway
// no longer holds that revision (OUT_OF_RANGE: the read was too slow, or
// another replica answered), the read starts again from a first page, at
// once (req's wait is over), up to three times; resp then takes the
// revision of the read that completed.
func (c *Client) nextPages(ctx context.Context, req *zkcoordv1.LookupRequest, resp *zkcoordv1.LookupResponse) ([]*zkcoordv1.Member, error) {
	members := resp.GetMembers()
	for restarts := 0; resp.GetNextPageToken() != ""; {
		next, err := c.rpc.registry.Lookup(ctx, &zkcoordv1.LookupRequest{Group: req.GetGroup(), PageSize: req.GetPageSize(),
			PageToken: resp.GetNextPageToken()})
		if status.Code(err) == codes.OutOfRange && restarts < 3 {
			restarts++
			next, err = c.rpc.registry.Lookup(ctx, &zkcoordv1.LookupRequest{Group: req.GetGroup(), PageSize: req.GetPageSize(),
				Consistency: req.GetConsistency()})
			members = nil
		}
		if err != nil {
			return nil, callErr(ctx, err, ErrNotFound)
		}
		members = append(members, next.GetMembers()...)
		resp.Revision, resp.NextPageToken = next.GetRevision(), next.GetNextPageToken()
	}
	return members, nil
}

func newRegisterRequest(group, memberID, value string, opts []RegisterOption) *zkcoordv1.RegisterRequest {
	var o registerOptions
	for _, fn := range opts {
		fn(&o)
	}
	return &zkcoordv1.RegisterRequest{Group: group, MemberId: memberID, Value: value, Metadata: o.metadata}
}

// registrations are the members a session registered, to register again
// after a restore. The lock serializes registrations with their restore, so
// that a restore never sends a value older than one sent after it.
type registrations struct {
	sem     chan struct{} // held while registering
	reqs    map[memberKey]*zkcoordv1.RegisterRequest
	pending map[memberKey]bool // to register again with the current lease
	errs    []error            // of the registrations the restore dropped
	active  bool               // a restore is under way; see restoring
}

type memberKey struct{ group, id string }

func (r *registrations) init() {
	r.sem = make(chan struct{}, 1)
	r.reqs = make(map[memberKey]*zkcoordv1.RegisterRequest)
	r.pending = make(map[memberKey]bool)
}

// lock waits for the lock, or until ctx ends, returning its cause.
func (r *registrations) lock(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (r *registrations) unlock() { <-r.sem }

// The methods below need the lock, but restoring.

// put records a registration made with the current lease.
func (r *registrations) put(req *zkcoordv1.RegisterRequest) {
	k := memberKey{req.GetGroup(), req.GetMemberId()}
	r.reqs[k] = req
	delete(r.pending, k)
}

func (r *registrations) forget(group, id string) {
	k := memberKey{group, id}
	delete(r.reqs, k)
	delete(r.pending, k)
}

// restart marks every registration pending, for a new lease.
func (r *registrations) restart() {
	for k := range r.reqs {
		r.pending[k] = true
	}
	r.active = true
}

// restoring reports whether a restore is under way. Only the session's
// goroutine writes active (in restart and finish), so it may read it
// without the lock.
func (r *registrations) restoring() bool { return r.active }

func (r *registrations) pendingRequests() []*zkcoordv1.RegisterRequest {
	var out []*zkcoordv1.RegisterRequest
	for k := range r.pending {
		out = append(out, r.reqs[k])
	}
	return out
}

// done records the outcome of registering req again: err drops it.
func (r *registrations) done(req *zkcoordv1.RegisterRequest, err error) {
	k := memberKey{req.GetGroup(), req.GetMemberId()}
	delete(r.pending, k)
	if err != nil {
		delete(r.reqs, k)
		r.errs = append(r.errs, err)
	}
}

// finish ends the restore when nothing is pending, returning true and the
// errors of what it dropped.
func (r *registrations) finish() (bool, error) {
	if !r.active || len(r.pending) > 0 {
		return false, nil
	}
	err := errors.Join(r.errs...)
	r.active, r.errs = false, nil
	return true, err
}
