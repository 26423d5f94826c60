package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestCallErr(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancelCause(context.Background())
	cancel(ErrSessionClosed)
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		err      error
		notFound error
		is       error
		code     codes.Code
	}{
		{"not found is the call's sentinel", live, status.Error(codes.NotFound, "x"), ErrLeaseLost, ErrLeaseLost, codes.NotFound},
		{"not found without a sentinel", live, status.Error(codes.NotFound, "x"), nil, nil, codes.NotFound},
		{"already exists", live, status.Error(codes.AlreadyExists, "x"), nil, ErrAlreadyExists, codes.AlreadyExists},
		{"other codes pass through", live, status.Error(codes.InvalidArgument, "x"), ErrNotFound, nil, codes.InvalidArgument},
		{"an ended context gives its cause", gone, status.Error(codes.Canceled, "x"), nil, ErrSessionClosed, codes.Canceled},
		{"an ended context keeps other codes", gone, status.Error(codes.NotFound, "x"), ErrLeaseLost, ErrLeaseLost, codes.NotFound},
		{"end of stream is transient", live, io.EOF, nil, nil, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := callErr(tc.ctx, tc.err, tc.notFound)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("callErr = %v, not %v", err, tc.is)
			}
			if got := Code(err); got != tc.code {
				t.Errorf("Code = %v, want %v", got, tc.code)
			}
		})
	}
	if callErr(live, nil, ErrNotFound) != nil {
		t.Error("callErr(nil) != nil")
	}
}

func TestCodeAndIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      codes.Code
		transient bool
	}{
		{nil, codes.OK, false},
		{status.Error(codes.Unavailable, "x"), codes.Unavailable, true},
		{fmt.Errorf("watch: %w", status.Error(codes.ResourceExhausted, "slow")), codes.ResourceExhausted, true},
		{status.Error(codes.Aborted, "x"), codes.Aborted, true},
		{status.Error(codes.InvalidArgument, "x"), codes.InvalidArgument, false},
		{status.Error(codes.Unimplemented, "x"), codes.Unimplemented, false},
		{fmt.Errorf("%w: %w", ErrLeaseLost, status.Error(codes.NotFound, "x")), codes.NotFound, false},
		{ErrLost, codes.Aborted, false},
		{fmt.Errorf("x: %w", ErrNotLeader), codes.FailedPrecondition, false},
		{ErrClosed, codes.Canceled, false},
		{context.Canceled, codes.Canceled, false},
		{context.DeadlineExceeded, codes.DeadlineExceeded, false},
		{errors.New("other"), codes.Unknown, false},
		{errStreamEnded, codes.Unavailable, true},
		{errKeepAliveTimeout, codes.Unavailable, true},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.code)
		}
		if got := IsTransient(tc.err); got != tc.transient {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.transient)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "over the limit").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want time.Duration
	}{
		{st.Err(), 1500 * time.Millisecond},
		{fmt.Errorf("grant: %w", st.Err()), 1500 * time.Millisecond},
		{status.Error(codes.ResourceExhausted, "no details"), 0},
		{errors.New("plain"), 0},
		{nil, 0},
	} {
		if got := RetryDelay(tc.err); got != tc.want {
			t.Errorf("RetryDelay(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
