package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. An error returned by this package wraps the sentinel that
// names its condition and, when a gateway answer caused it, the gRPC status
// error too: both errors.Is(err, ErrLeaseLost) and status.Code(err) work.
var (
	// ErrClosed reports that the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrSessionClosed reports that the Session was closed.
	ErrSessionClosed = errors.New("session: closed")
	// ErrLeaseLost reports that a lease has ended: it expired or was revoked,
	// and everything it owned is gone.
	ErrLeaseLost = errors.New("lease: lost")
	// ErrNotFound reports that a member (or another named thing) does not
	// exist.
	ErrNotFound = errors.New("registry: not found")
	// ErrAlreadyExists reports that a member ID is held by another lease or
	// is persistent.
	ErrAlreadyExists = errors.New("registry: member held by another owner")
	// ErrLost reports that a candidacy or a term ended without a resign: its
	// lease ended, its znode was removed, or its stream broke for good.
	ErrLost = errors.New("election: lost")
	// ErrResigned reports that a candidacy was withdrawn by Resign.
	ErrResigned = errors.New("election: resigned")
	// ErrNotLeader reports that a Resign found no term to end.
	ErrNotLeader = errors.New("election: not leader")
	// ErrJeopardy reports that a term (or a lock's hold) ended because its
	// jeopardy deadline passed before the gateway confirmed it again.
	ErrJeopardy = errors.New("election: jeopardy deadline passed")
	// ErrLockLost reports that a lock's hold ended without an Unlock: its
	// lease ended, its znode was removed, or its stream broke for good.
	ErrLockLost = errors.New("lock: lost")
	// ErrReleased reports that its holder gave a lock's hold up (Unlock)
	// or a semaphore's permit (Permit.Release).
	ErrReleased = errors.New("released by its holder")
	// ErrLocked reports that TryLock found the lock held.
	ErrLocked = errors.New("lock: held by another lease")
	// ErrStaleToken reports that a Fence refused a token older than one it
	// accepted, or a sequencer check found it no longer current.
	ErrStaleToken = errors.New("fence: stale token")
)

// sentinelCodes is the one table between sentinels and gRPC codes: Code
// reads it for errors that carry no status.
var sentinelCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrClosed, codes.Canceled},
	{ErrSessionClosed, codes.Canceled},
	{ErrLeaseLost, codes.NotFound},
	{ErrNotFound, codes.NotFound},
	{ErrAlreadyExists, codes.AlreadyExists},
	{ErrLost, codes.Aborted},
	{ErrResigned, codes.Aborted},
	{ErrNotLeader, codes.FailedPrecondition},
	{ErrJeopardy, codes.Aborted},
	{ErrLockLost, codes.Aborted},
	{ErrReleased, codes.Aborted},
	{ErrLocked, codes.FailedPrecondition},
	{ErrStaleToken, codes.FailedPrecondition},
	{ErrNoPermit, codes.ResourceExhausted},
	{ErrPermitLost, codes.Aborted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// Code returns the gRPC code of err: the code of the status it wraps, else
// the code of its sentinel or context error, codes.OK for nil and
// codes.Unknown for anything else.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	for _, e := range sentinelCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codes.Unknown
}

// IsTransient reports whether err is worth retrying unchanged: the gateway
// was unreachable, overloaded, ended a stream to make its client resync, or
// failed in a way that says nothing about the request.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := status.FromError(err); !ok {
		return false
	}
	switch Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal,
		codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

// RetryDelay is how long the gateway asked the caller to wait before trying
// again (the RetryInfo of a RESOURCE_EXHAUSTED call over a limit), 0 when
// it did not say. The client's own retries wait at least that long.
func RetryDelay(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// errStreamEnded stands for a stream the gateway ended without a status; the
// streams it applies to never end by themselves, so it is transient.
var errStreamEnded = status.Error(codes.Unavailable, "client: stream ended by the gateway")

// callErr translates the error of a call made with ctx: the cause of ctx when
// ctx ended the call, else the status error wrapped in the sentinel its code
// stands for. notFound is what NOT_FOUND means for this call (nil: nothing).
func callErr(ctx context.Context, err, notFound error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return errStreamEnded
	}
	if ctx.Err() != nil {
		switch status.Code(err) {
		case codes.Canceled, codes.DeadlineExceeded:
			return context.Cause(ctx)
		}
	}
	var sentinel error
	switch status.Code(err) {
	case codes.NotFound:
		sentinel = notFound
	case codes.AlreadyExists:
		sentinel = ErrAlreadyExists
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
