package chaosrun

import (
	"context"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/client"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
)

// watcher follows the group through the Go client and records every
// message of every state it emits: type, revision, member and value, the
// snapshot's members, resync, and the more flag.
type watcher struct {
	r  *run
	id string

	mu   sync.Mutex
	last checker.Observation
}

var watchTypes = map[pb.WatchGroupResponse_Type]checker.WatchType{
	pb.WatchGroupResponse_TYPE_SNAPSHOT: checker.WatchSnapshot,
	pb.WatchGroupResponse_TYPE_JOINED:   checker.WatchJoined,
	pb.WatchGroupResponse_TYPE_LEFT:     checker.WatchLeft,
	pb.WatchGroupResponse_TYPE_UPDATED:  checker.WatchUpdated,
}

func (w *watcher) loop(ctx context.Context) {
	c, err := client.New(ctx, w.r.target, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		return
	}
	defer c.Close()
	for st := range c.WatchGroup(ctx, w.r.group) {
		if st.Err != nil {
			continue
		}
		for _, msg := range st.Events {
			ev := checker.Event{Kind: checker.KindWatchEvent, Client: w.id, Group: w.r.group, Type: watchTypes[msg.GetType()],
				Revision: msg.GetRevision(), More: msg.GetMore()}
			if msg.GetType() == pb.WatchGroupResponse_TYPE_SNAPSHOT {
				ev.Members, ev.Resync = values(msg.GetMembers()), st.Resync
			} else if m := msg.GetMember(); m != nil {
				ev.Member, ev.Value = m.GetId(), m.GetValue()
			}
			w.r.h.Record(ev)
		}
		ms := map[string]string{}
		for id, m := range st.Members {
			ms[id] = m.GetValue()
		}
		w.mu.Lock()
		w.last = checker.Observation{Source: w.id, Time: time.Now(), Group: w.r.group, Members: ms, Revision: st.Revision}
		w.mu.Unlock()
	}
}

// observation is the watcher's state, as of now (its last state still
// holds when nothing changed since).
func (w *watcher) observation() checker.Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.last
	o.Time = time.Now()
	return o
}
