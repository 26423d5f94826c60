package client

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// WatchMany watches several groups over one stream (RegistryService.Watch,
// whose watch IDs multiplex many watches, as etcd's do) and sends the
// state of each, marked by its Group, on the returned channel: for each
// group what WatchGroup would send, in the same order; the states of
// different groups interleave. A group named twice is watched twice.
//
// When the stream breaks it reconnects with backoff and resumes every
// watch after the last complete revision it delivered; a watch the gateway
// ends alone (it fell behind, or the gateway's cache of its group stopped)
// resumes at once on the same stream. A watch the gateway refuses for good
// (no right over its group, a bad name) ends with a last state carrying
// Err, and the others go on. The channel is closed when ctx ends, the
// client is closed, or every watch was refused.
func (c *Client) WatchMany(ctx context.Context, groups ...string) <-chan GroupState {
	ch := make(chan GroupState)
	ctx, release := c.bind(ctx)
	started := c.grp.start(func() {
		defer close(ch)
		defer release()
		send := func(s GroupState) bool {
			select {
			case ch <- s:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if err := c.watchMany(ctx, groups, send); err != nil && ctx.Err() == nil && !errors.Is(err, errStopped) {
			for _, g := range groups {
				if !send(GroupState{Group: g, Err: err}) {
					return
				}
			}
		}
	})
	if !started {
		release()
		closed := make(chan GroupState, len(groups))
		for _, g := range groups {
			closed <- GroupState{Group: g, Err: ErrClosed}
		}
		close(closed)
		return closed
	}
	return ch
}

// muxView is one watch of WatchMany: its group's view, and its state on
// the current stream.
type muxView struct {
	groupView
	created bool // on the current stream
	refused bool // for good
}

// watchMany runs the watches of groups (watch i+1 is groups[i]), passing
// each state to emit, until emit returns false (errStopped), ctx ends,
// every watch was refused (nil), or the stream fails for good.
func (c *Client) watchMany(ctx context.Context, groups []string, emit func(GroupState) bool) error {
	views := make([]*muxView, len(groups))
	for i, g := range groups {
		views[i] = &muxView{groupView: groupView{group: g}}
	}
	live := len(groups)
	return c.retry(ctx, "watch groups", func(b *backoff) error {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.registry.Watch(sctx)
		if err != nil {
			return callErr(sctx, err, ErrNotFound)
		}
		create := func(i int) error {
			v := views[i]
			v.dropPartial()
			v.created = false
			return stream.Send(&zkcoordv1.WatchRequest{Request: &zkcoordv1.WatchRequest_Create{Create: &zkcoordv1.WatchCreateRequest{
				WatchId: int64(i + 1), Group: v.group, StartRevision: v.resumeFrom(), SnapshotPageSize: snapshotPage}}})
		}
		for i, v := range views {
			if !v.refused {
				if err := create(i); err != nil {
					return callErr(sctx, err, ErrNotFound)
				}
			}
		}
		for live > 0 {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(sctx, err, ErrNotFound)
			}
			i := int(msg.GetWatchId()) - 1
			if i < 0 || i >= len(views) || views[i].refused {
				continue // not ours
			}
			v := views[i]
			switch {
			case msg.GetCreated():
				v.created = true
				b.reset()
			case msg.GetCanceled():
				err := status.Error(codes.Code(msg.GetCancelCode()), msg.GetCancelReason())
				switch {
				case IsTransient(err) && v.created: // cut alone: resume at once
					if err := create(i); err != nil {
						return callErr(sctx, err, ErrNotFound)
					}
				case IsTransient(err): // refused for now: back off, resume all
					return err
				default:
					v.refused = true
					live--
					if !emit(GroupState{Group: v.group, Err: callErr(sctx, err, ErrNotFound)}) {
						return errStopped
					}
				}
			case msg.GetEvent() != nil:
				if s, ok := v.apply(msg.GetEvent()); ok && !emit(s) {
					return errStopped
				}
			}
		}
		return nil
	})
}
