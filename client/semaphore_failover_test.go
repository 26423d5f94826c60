package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestSemaphoreDrain: a permit survives the drain of the replica that
// serves its stream, twice: the gateway says JEOPARDY without a deadline,
// the client reopens the stream on another replica and the permit goes on
// (same token, its context never ended), while another session finds no
// permit free; then it is released.
func TestSemaphoreDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := fmt.Sprintf("/semdrain-%d", time.Now().UnixNano())
	reps := map[string]*testenv.Replica{}
	var addrs []string
	for _, id := range []string{"a", "b", "c"} {
		reps[id] = testenv.StartReplica(t, root, id)
		addrs = append(addrs, reps[id].Addr)
	}
	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	c, err := client.New(ctx, strings.Join(addrs, ","), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	holder, other := session(t, c), session(t, c)
	p, err := holder.AcquirePermit(ctx, "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	token := p.Token()
	// The replica that serves the stream owns the lease (its acquire
	// moved the lease there).
	owner := func() string {
		data, _, err := truth.Conn().Get(zktest.Layout{Root: root}.Lease(lease.KeyOf(holder.Lease())))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Owner string }
		_ = json.Unmarshal(data, &rec)
		return rec.Owner
	}
	for range 2 {
		id := owner()
		before := p.State()
		reps[id].Stop() // drain, as on SIGTERM
		delete(reps, id)
		// Jeopardy (without the gateway's deadline: the lease's), which may
		// be over already: the state changed since before the drain.
		select {
		case <-before.Changed:
		case <-p.Context().Done():
			t.Fatalf("the permit ended on the drain of %s: %v", id, context.Cause(p.Context()))
		case <-ctx.Done():
			t.Fatalf("no jeopardy on the drain of %s", id)
		}
		for state := p.State(); state.Jeopardy; state = p.State() {
			select {
			case <-state.Changed:
			case <-p.Context().Done():
				t.Fatalf("the permit ended after the drain of %s: %v", id, context.Cause(p.Context()))
			}
		}
		if p.Token() != token {
			t.Fatalf("token %d after the drain of %s, was %d", p.Token(), id, token)
		}
		if _, err := other.TryAcquirePermit(ctx, "s", 1); !errors.Is(err, client.ErrNoPermit) {
			t.Fatalf("TryAcquire while the permit is held, after the drain of %s: %v", id, err)
		}
		t.Logf("replica %s drained: the permit went on with token %d", id, token)
	}
	if err := p.Release(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := other.TryAcquirePermit(ctx, "s", 1)
	if err != nil || q.Token() <= token {
		t.Fatalf("TryAcquire after the release: %v, %v", q, err)
	}
}
