package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lock"
)

type lockService struct {
	pb.UnimplementedLockServiceServer
	locks     *lock.Locks
	elections *election.Elections // CheckSequencer checks terms too
	c         *calls
}

var _ pb.LockServiceServer = (*lockService)(nil)

var lockStatus = map[lock.Status]pb.AcquireLockResponse_Status{
	lock.Queued:   pb.AcquireLockResponse_STATUS_QUEUED,
	lock.Held:     pb.AcquireLockResponse_STATUS_HELD,
	lock.Jeopardy: pb.AcquireLockResponse_STATUS_JEOPARDY,
	lock.Lost:     pb.AcquireLockResponse_STATUS_LOST,
	lock.Released: pb.AcquireLockResponse_STATUS_RELEASED,
}

func lockMode(m pb.LockMode) lock.Mode {
	if m == pb.LockMode_LOCK_MODE_SHARED {
		return lock.Shared
	}
	return lock.Exclusive
}

func modePB(m lock.Mode) pb.LockMode {
	if m == lock.Shared {
		return pb.LockMode_LOCK_MODE_SHARED
	}
	return pb.LockMode_LOCK_MODE_EXCLUSIVE
}

// Acquire streams a hold's states. The hold belongs to the stream: when
// it ends, the hold is released (with the stream's own lease, by revoking
// it), unless the gateway drains (the lease and the hold are handed off,
// for the client to resume).
func (s *lockService) AcquireLock(req *pb.AcquireLockRequest, stream pb.LockService_AcquireLockServer) error {
	ctx, cancel := s.c.streamContext(stream.Context())
	defer cancel()
	leaseID, release, err := s.c.streamLease(ctx, req.GetLeaseId(), req.GetTtl().AsDuration())
	if err != nil {
		return toStatus(err)
	}
	defer release()
	ended := false
	var last lock.Update
	hold, err := s.locks.Acquire(ctx, lock.Request{Lock: req.GetLock(), Mode: lockMode(req.GetMode()), LeaseID: leaseID,
		Reentrant: req.GetReentrant(), Resume: req.GetResume()}, func(u lock.Update) error {
		last = u
		ended = u.Status == lock.Lost || u.Status == lock.Released
		resp := &pb.AcquireLockResponse{Status: lockStatus[u.Status], Node: u.Node, Hold: u.Hold, Position: int32(u.Position),
			FencingToken: u.Token, LeaseId: leaseID, Holds: int32(u.Holds), Mode: modePB(u.Mode)}
		if !u.Deadline.IsZero() {
			resp.JeopardyDeadline = timestamppb.New(u.Deadline)
		}
		return stream.Send(resp)
	})
	if s.c.draining.Load() && (last.Status == lock.Held || last.Status == lock.Jeopardy) {
		// The drain notice: JEOPARDY without a deadline. The hold is kept
		// for the client to resume elsewhere; a stream that ends without
		// it has released its hold.
		_ = stream.Send(&pb.AcquireLockResponse{Status: pb.AcquireLockResponse_STATUS_JEOPARDY, Node: last.Node, Hold: last.Hold,
			FencingToken: last.Token, LeaseId: leaseID, Holds: int32(last.Holds), Mode: modePB(last.Mode)})
	}
	if req.GetLeaseId() != "" && !ended && !refused(err) {
		s.releaseHold(ctx, req.GetLock(), leaseID, hold)
	}
	return toStatus(err)
}

// refused reports whether an AcquireLock failed without adding its hold.
func refused(err error) bool {
	for _, e := range []error{lock.ErrAlreadyHeld, lock.ErrModeMismatch, lock.ErrTooManyHolds, lease.ErrNotFound, lease.ErrNotHolder} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// releaseHold releases the hold of an AcquireLock stream under a client's
// lease when the stream ends, unless the gateway drains. The release is
// done within ctx (the stream's) if it can be; when ctx has ended (the
// stream is gone), it goes on in the background, on the same ZooKeeper
// session, after the stream's last write: it sees it.
func (s *lockService) releaseHold(ctx context.Context, name, leaseID, hold string) {
	if s.c.draining.Load() {
		return // handed off with the lease: the client may resume it
	}
	do := func(ctx context.Context) error {
		_, _, err := s.locks.Release(ctx, name, leaseID, hold)
		if errors.Is(err, lock.ErrNotHeld) || errors.Is(err, lease.ErrNotFound) {
			return nil
		}
		return err
	}
	if ctx.Err() == nil && do(ctx) == nil {
		return
	}
	s.c.background(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := do(ctx); err != nil && s.c.ctx.Err() == nil {
			s.c.log.Warn("release the hold of an Acquire stream that ended", "lock", name, "lease", lease.KeyOf(leaseID), "err", err)
		}
	})
}

// TryAcquire takes a lock if it is free, for the request's lease or one
// granted for the call (revoked when the lock is not taken).
func (s *lockService) TryAcquireLock(ctx context.Context, req *pb.TryAcquireLockRequest) (*pb.TryAcquireLockResponse, error) {
	l, granted, err := s.c.callLease(ctx, req.GetLeaseId(), req.GetTtl())
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := s.locks.TryAcquire(ctx, lock.Request{Lock: req.GetLock(), Mode: lockMode(req.GetMode()), LeaseID: l.ID,
		Reentrant: req.GetReentrant()})
	if granted && (err != nil || !r.Acquired) { // nothing held: drop the lease made for this call
		s.c.revoke(ctx, l.ID)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.TryAcquireLockResponse{Acquired: r.Acquired, Node: r.Node, Hold: r.Hold, FencingToken: r.Token,
		Holds: int32(r.Holds), Holders: holdersPB(r.Holders)}
	if r.Acquired {
		resp.LeaseId, resp.LeaseExpiresAt = l.ID, timestamppb.New(s.c.expiry(ctx, l))
	} else if !granted {
		resp.LeaseId = l.ID
	}
	return resp, nil
}

func (s *lockService) ReleaseLock(ctx context.Context, req *pb.ReleaseLockRequest) (*pb.ReleaseLockResponse, error) {
	n, rev, err := s.locks.Release(ctx, req.GetLock(), req.GetLeaseId(), req.GetHold())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReleaseLockResponse{Holds: int32(n), Revision: rev}, nil
}

func (s *lockService) GetLock(ctx context.Context, req *pb.GetLockRequest) (*pb.GetLockResponse, error) {
	holders, waiters, rev, err := s.locks.Get(ctx, req.GetLock())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetLockResponse{Holders: holdersPB(holders), Waiters: waitersPB(waiters), Revision: rev}, nil
}

// CheckSequencer checks a lock's token, or an election's.
func (s *lockService) CheckSequencer(ctx context.Context, req *pb.CheckSequencerRequest) (*pb.CheckSequencerResponse, error) {
	var (
		current      bool
		highest, rev int64
		err          error
	)
	if req.GetLock() != "" {
		current, highest, rev, err = s.locks.Check(ctx, req.GetLock(), req.GetFencingToken())
	} else {
		current, highest, rev, err = s.elections.Check(ctx, req.GetElection(), req.GetFencingToken())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CheckSequencerResponse{Current: current, HighestToken: highest, Revision: rev}, nil
}

func waitersPB(ws []lock.Holder) []*pb.LockWaiter {
	var out []*pb.LockWaiter
	for _, w := range ws {
		out = append(out, &pb.LockWaiter{Node: w.Node, Mode: modePB(w.Mode), Position: int32(w.Position)})
	}
	return out
}

func holdersPB(hs []lock.Holder) []*pb.LockHolder {
	var out []*pb.LockHolder
	for _, h := range hs {
		out = append(out, &pb.LockHolder{Node: h.Node, Mode: modePB(h.Mode), FencingToken: h.Token, Holds: int32(h.Holds)})
	}
	return out
}
