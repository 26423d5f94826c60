package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lease/peer"
	"github.com/zkcoord/zkcoord/internal/lock"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/semaphore"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// errStopping ends streams when the gateway shuts down; clients reconnect
// (to another replica) and resume.
var errStopping = errors.New("zkcoord: gateway shutting down, reconnect and resume")

// codeTable maps each domain error to its gRPC code: the one place where
// errors become statuses.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{lease.ErrNotFound, codes.NotFound},
	{lease.ErrOwnedElsewhere, codes.Unavailable},
	{lease.ErrClosed, codes.Unavailable},
	{lease.ErrDraining, codes.Unavailable},
	{lease.ErrUnreachable, codes.Unavailable},
	{lease.ErrNotHolder, codes.PermissionDenied},
	{lease.ErrContended, codes.Aborted},
	{registry.ErrMemberExists, codes.AlreadyExists},
	{registry.ErrMemberNotFound, codes.NotFound},
	{registry.ErrNotOwner, codes.PermissionDenied},
	{registry.ErrConflict, codes.Aborted},
	{registry.ErrSlowWatcher, codes.ResourceExhausted},
	{registry.ErrCacheStopped, codes.Unavailable},
	{registry.ErrClosed, codes.Unavailable},
	{registry.ErrRevisionGone, codes.OutOfRange},
	{errPageToken, codes.InvalidArgument},
	{barrier.ErrThresholdMismatch, codes.FailedPrecondition},
	{barrier.ErrParticipantExists, codes.AlreadyExists},
	{barrier.ErrNotParticipant, codes.NotFound},
	{barrier.ErrNotOwner, codes.PermissionDenied},
	{barrier.ErrConflict, codes.Aborted},
	{barrier.ErrClosed, codes.Unavailable},
	{election.ErrNotCandidate, codes.NotFound},
	{election.ErrClosed, codes.Unavailable},
	{election.ErrConflict, codes.Aborted},
	{lock.ErrNotHeld, codes.NotFound},
	{lock.ErrAlreadyHeld, codes.AlreadyExists},
	{lock.ErrModeMismatch, codes.FailedPrecondition},
	{lock.ErrTooManyHolds, codes.ResourceExhausted},
	{lock.ErrClosed, codes.Unavailable},
	{lock.ErrConflict, codes.Aborted},
	{semaphore.ErrPermitsMismatch, codes.FailedPrecondition},
	{semaphore.ErrNotAcquired, codes.NotFound},
	{semaphore.ErrConflict, codes.Aborted},
	{semaphore.ErrClosed, codes.Unavailable},
	{zkx.ErrClosed, codes.Unavailable},
	{errStopping, codes.Unavailable},
	{peer.ErrUnreachable, codes.Unavailable},
	{peer.ErrRefused, codes.Unavailable},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus turns an error from a recipe into a gRPC status error. Errors
// that already are statuses (validation) pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if le := (*lease.LimitError)(nil); errors.As(err, &le) {
		return auth.Exhausted(le.Holder, "leases", le.Limit, time.Second)
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	if zkx.Transient(err) {
		return status.Error(codes.Unavailable, "zookeeper unavailable: "+err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
