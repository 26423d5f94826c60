package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/validate"
)

// Watch serves many group watches on one stream (etcd's model: watch IDs
// multiplexed on a bidirectional stream). Two goroutines serve it, however
// many watches it holds: this one sends, and a receive loop (recvWatches)
// creates and cancels watches. A watch has no goroutine: its registry Sub
// calls notify, which queues the watch on its stream and wakes the sender.
// The sender sends each watch's messages in the order a WatchGroup stream
// would; one watch's end (a refusal, the slow-watcher cut) ends it alone.
// A client that half-closes the stream keeps its watches: the call ends
// with OK once none is left (the client canceled them all), or when the
// client or the gateway ends it.
func (s *registryService) Watch(stream pb.RegistryService_WatchServer) error {
	m := &muxStream{s: s, stream: stream, wake: make(chan struct{}, 1), watches: map[int64]*muxWatch{},
		encoded: map[*registry.Event][]byte{}}
	defer m.close()
	recvErr := make(chan error, 1)
	go func(end chan<- error) { end <- m.recvWatches() }(recvErr) // ends when the stream ends: Recv returns then
	ctx := stream.Context()
	halfClosed := false
	for {
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-s.c.stopping:
			return toStatus(errStopping)
		case err := <-recvErr:
			if !errors.Is(err, io.EOF) {
				return toStatus(err)
			}
			// The client sends no more requests; its watches go on.
			halfClosed, recvErr = true, nil
		case <-m.wake:
		}
		if err := m.flush(); err != nil {
			return err
		}
		if halfClosed && m.idle() {
			return nil // no more requests and no watch left: done
		}
	}
}

// idle reports whether the stream has no watch and nothing to send.
func (m *muxStream) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.watches) == 0 && len(m.ready) == 0 && len(m.refused) == 0
}

// muxStream is one Watch stream.
type muxStream struct {
	s      *registryService
	stream pb.RegistryService_WatchServer
	wake   chan struct{} // capacity 1: the sender has something to send

	mu      sync.Mutex
	watches map[int64]*muxWatch // by ID, from the create's receipt to its canceled message
	ready   []*muxWatch         // watches with something to send, each once
	refused []*pb.WatchResponse // answers of creates refused before they had a watch
	nextID  int64               // the last ID chosen by the gateway
	closed  bool                // the call ended: creates still under way close their Sub

	// encoded is the sender's, for one flush: each event's encoding as the
	// event field of a WatchResponse, shared by the watches of its group.
	encoded map[*registry.Event][]byte
}

// muxWatch is one watch of a stream: a few words beside its Sub.
type muxWatch struct {
	id      int64
	group   string
	sub     *registry.Sub        // set (under mu) once the watch is created
	start   *registry.WatchStart // sent, then dropped, by the sender
	release func()               // ends its count in the principal's limits
	queued  bool                 // in ready; guarded by mu
	cancel  bool                 // the client canceled it; guarded by mu
	ended   bool                 // its canceled message was sent; the sender's
	page    int                  // snapshot page size (0: whole)
}

// notify is the Sub's: it queues w once and wakes the sender. It runs
// under the group's lock and takes only the stream's.
func (m *muxStream) notify(w *muxWatch) {
	m.mu.Lock()
	m.queueLocked(w)
	m.mu.Unlock()
}

func (m *muxStream) queueLocked(w *muxWatch) {
	if w.queued || w.sub == nil { // not created yet: its creation queues it
		return
	}
	w.queued = true
	m.ready = append(m.ready, w)
	m.signal()
}

func (m *muxStream) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// recvWatches creates and cancels watches as the client asks, until the
// stream ends.
func (m *muxStream) recvWatches() error {
	ctx := m.stream.Context()
	for {
		req, err := m.stream.Recv()
		if err != nil {
			return err
		}
		switch {
		case req.GetCreate() != nil:
			m.create(ctx, req.GetCreate())
		case req.GetCancel() != nil:
			m.cancelWatch(req.GetCancel().GetWatchId())
		default:
			m.refuse(0, status.New(codes.InvalidArgument, "invalid WatchRequest: set create or cancel"))
		}
	}
}

// create makes one watch, or refuses it alone.
func (m *muxStream) create(ctx context.Context, req *pb.WatchCreateRequest) {
	if err := validate.Request(req); err != nil {
		m.refuse(req.GetWatchId(), status.Convert(err))
		return
	}
	w, st := m.reserve(req)
	if st != nil {
		m.refuse(req.GetWatchId(), st)
		return
	}
	release, err := auth.AuthorizeWatch(ctx, req.GetGroup())
	if err != nil {
		m.unreserve(w, status.Convert(err))
		return
	}
	sub, start, err := m.s.registry.WatchNotify(ctx, req.GetGroup(), req.GetStartRevision(), func() { m.notify(w) })
	if err != nil {
		release()
		m.unreserve(w, status.Convert(toStatus(err)))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		sub.Close()
		release()
		return
	}
	w.sub, w.start, w.release = sub, &start, release
	m.queueLocked(w)
}

// reserve takes the watch's ID (the client's, or one chosen here) for it.
func (m *muxStream) reserve(req *pb.WatchCreateRequest) (*muxWatch, *status.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, status.New(codes.Canceled, "the stream ended")
	}
	id := req.GetWatchId()
	if id == 0 {
		for m.nextID++; m.watches[m.nextID] != nil; m.nextID++ {
		}
		id = m.nextID
	} else if m.watches[id] != nil {
		return nil, status.Newf(codes.AlreadyExists, "watch %d is in use on this stream", id)
	}
	w := &muxWatch{id: id, group: req.GetGroup(), page: int(req.GetSnapshotPageSize())}
	m.watches[id] = w
	return w, nil
}

// unreserve refuses a reserved watch that could not be created.
func (m *muxStream) unreserve(w *muxWatch, st *status.Status) {
	m.mu.Lock()
	delete(m.watches, w.id)
	m.mu.Unlock()
	m.refuse(w.id, st)
}

// refuse answers a create (or a malformed request) with canceled alone.
func (m *muxStream) refuse(id int64, st *status.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused = append(m.refused, canceledPB(id, st))
	m.signal()
}

// cancelWatch ends a watch at the client's request; the sender sends its
// canceled message. An unknown ID is answered so too.
func (m *muxStream) cancelWatch(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.watches[id]
	if w == nil {
		m.refused = append(m.refused, canceledPB(id, status.New(codes.Canceled, "no such watch on this stream")))
		m.signal()
		return
	}
	w.cancel = true
	m.queueLocked(w)
}

// flush sends what the queued watches have: the refusals, then each
// watch's created message and start, its events, or its end.
func (m *muxStream) flush() error {
	m.mu.Lock()
	refused, ready := m.refused, m.ready
	m.refused, m.ready = nil, nil
	canceled := make([]bool, len(ready))
	for i, w := range ready {
		w.queued, canceled[i] = false, w.cancel
	}
	m.mu.Unlock()
	for _, r := range refused {
		if err := m.stream.Send(r); err != nil {
			return err
		}
	}
	clear(m.encoded) // events are shared by the watches of a group: encode each once per flush
	for i, w := range ready {
		if err := m.flushWatch(w, canceled[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *muxStream) flushWatch(w *muxWatch, canceled bool) error {
	if w.ended { // queued again before its end
		return nil
	}
	if st := w.start; st != nil { // first: a created watch says so even if canceled at once
		w.start = nil
		if err := m.stream.Send(&pb.WatchResponse{WatchId: w.id, Created: true}); err != nil {
			return err
		}
		if v := st.Snapshot; v != nil {
			if end, err := m.sendSnapshot(w, v, st.Resync); err != nil || end != nil {
				if err != nil {
					return err
				}
				return m.end(w, end)
			}
		}
		if err := m.sendEvents(w, st.Backlog); err != nil {
			return err
		}
	}
	if canceled {
		return m.end(w, status.New(codes.Canceled, "canceled by the client"))
	}
	evs, err := w.sub.Take()
	if err != nil {
		return m.end(w, status.Convert(toStatus(fmt.Errorf("watch %s: %w", w.group, err))))
	}
	return m.sendEvents(w, evs)
}

// eventField is WatchResponse's event field number.
var eventField = (&pb.WatchResponse{}).ProtoReflect().Descriptor().Fields().ByName("event").Number()

// sendEvents sends each event to w. A change reaches every watch of its
// group, thousands on one stream: it is encoded once per flush (the
// profile of a fan-out to 100,000 watches showed the encoding of the same
// member for each watch as the sender's largest cost) and each watch's
// message carries those bytes as its event field, set as the message's
// unknown fields, which proto.Marshal writes as they are.
func (m *muxStream) sendEvents(w *muxWatch, evs []*registry.Event) error {
	for _, ev := range evs {
		raw, ok := m.encoded[ev]
		if !ok {
			b := ev.Encoded(encodeEvent) // once for every stream
			if b == nil {
				_, err := proto.Marshal(eventPB(ev))
				return status.Errorf(codes.Internal, "encode watch event: %v", err)
			}
			raw = protowire.AppendBytes(protowire.AppendTag(nil, eventField, protowire.BytesType), b)
			m.encoded[ev] = raw
		}
		resp := &pb.WatchResponse{WatchId: w.id}
		resp.ProtoReflect().SetUnknown(raw)
		if err := m.stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (m *muxStream) send(w *muxWatch, ev *pb.WatchGroupResponse) error {
	return m.stream.Send(&pb.WatchResponse{WatchId: w.id, Event: ev})
}

// end closes a watch and sends its canceled message; its ID is free after.
func (m *muxStream) end(w *muxWatch, st *status.Status) error {
	w.ended = true
	w.sub.Close()
	w.release()
	m.mu.Lock()
	delete(m.watches, w.id)
	m.mu.Unlock()
	return m.stream.Send(canceledPB(w.id, st))
}

// close ends every watch when the call ends; a create still under way
// closes its own.
func (m *muxStream) close() {
	m.mu.Lock()
	m.closed = true
	ws := m.watches
	m.watches = nil
	m.mu.Unlock()
	for _, w := range ws {
		if w.sub != nil {
			w.sub.Close()
			w.release()
		}
	}
}

func canceledPB(id int64, st *status.Status) *pb.WatchResponse {
	return &pb.WatchResponse{WatchId: id, Canceled: true, CancelCode: int32(st.Code()), CancelReason: st.Message()}
}

// maxWholeSnapshot is the largest snapshot sent as one message: what a
// client with gRPC's default limit (4 MiB) receives, less room for the
// WatchResponse around it.
const maxWholeSnapshot = 4<<20 - 1<<10

// sendSnapshot sends w's snapshot, in pages when the watch asked for them.
// A whole one too big for a default client would end the stream, with
// every other watch on it, at the client: w alone ends instead (the status
// returned).
func (m *muxStream) sendSnapshot(w *muxWatch, v *registry.Snapshot, resync bool) (*status.Status, error) {
	if w.page > 0 {
		return nil, sendSnapshot(func(ev *pb.WatchGroupResponse) error { return m.send(w, ev) }, v, resync, w.page)
	}
	msg := snapshotPB(v, resync)
	if n := proto.Size(msg); n > maxWholeSnapshot {
		return status.Newf(codes.ResourceExhausted, "the snapshot of group %s is %d bytes, more than a client receives in one message by default (4 MiB): watch it with snapshot_page_size", w.group, n), nil
	}
	return nil, m.send(w, msg)
}

func snapshotPB(v *registry.Snapshot, resync bool) *pb.WatchGroupResponse {
	return &pb.WatchGroupResponse{Type: pb.WatchGroupResponse_TYPE_SNAPSHOT, Revision: v.Rev, Resync: resync,
		Members: membersPB(v.Members())}
}
