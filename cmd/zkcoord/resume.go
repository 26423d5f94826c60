package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The commands that run until interrupted (watch, observe, lease keepalive
// --forever) open their stream again when it breaks for a reason that
// passes: the gateway went away or drained (UNAVAILABLE, or the stream's
// end), a slow watcher was cut or a limit refused the call for now
// (RESOURCE_EXHAUSTED), the call was aborted. A refusal that another try
// would meet again (bad input, no right, no such lease) ends the command
// with its error, as before.

// resumable reports whether a stream that ended with err may be opened
// again.
func resumable(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// Waits between attempts to open a broken stream again: from the first to
// the last, doubling; back to the first once a stream delivered.
const (
	resumeFirst = 100 * time.Millisecond
	resumeLast  = 5 * time.Second
)

// resume runs follow, which opens a stream and reads it until it ends,
// again and again while it ends for a reason that passes, telling stderr
// each time; progressed reports whether the stream delivered anything.
// It returns nil once ctx ends (the user stopped it), and the error of a
// stream that ended otherwise.
func resume(ctx context.Context, stderr io.Writer, what string, follow func(ctx context.Context) (progressed bool, err error)) error {
	wait := resumeFirst
	for {
		progressed, err := follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if !resumable(err) {
			return streamEnd(ctx, err)
		}
		if progressed {
			wait = resumeFirst
		}
		fmt.Fprintf(stderr, "zkcoord: %s: stream broke (%v); opening it again in %v\n", what, streamEnd(ctx, err), wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, resumeLast)
	}
}
