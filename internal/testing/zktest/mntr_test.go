package zktest

import (
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestMain(m *testing.M) { Main(m) }

// TestChildWatches: a child watch counts, a data watch does not, and a
// fired child watch is no longer counted. The recipes' watch-leak tests
// rest on this count.
func TestChildWatches(t *testing.T) {
	s, lay := Session(t)
	before, watches := ChildWatches(t), Mntr(t, "zk_watch_count")

	_, _, childEv, err := s.Conn().ChildrenW(lay.Root)
	if err != nil {
		t.Fatal(err)
	}
	if got := ChildWatches(t); got != before+1 {
		t.Fatalf("after a child watch: %d child watches, want %d", got, before+1)
	}
	_, _, dataEv, err := s.Conn().GetW(lay.Root)
	if err != nil {
		t.Fatal(err)
	}
	if got := ChildWatches(t); got != before+1 {
		t.Fatalf("after a data watch: %d child watches, want %d", got, before+1)
	}
	if got := Mntr(t, "zk_watch_count"); got != watches+2 {
		t.Fatalf("zk_watch_count %d, want %d", got, watches+2)
	}

	if _, err := s.Conn().Create(path.Join(lay.Root, "c"), nil, 0, s.ACL()); err != nil {
		t.Fatal(err)
	}
	if ev := await(t, childEv); ev.Type != zk.EventNodeChildrenChanged {
		t.Fatalf("child watch fired %v", ev.Type)
	}
	if got := ChildWatches(t); got != before {
		t.Fatalf("after the child watch fired: %d child watches, want %d", got, before)
	}
	if _, err := s.Conn().Set(lay.Root, []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if ev := await(t, dataEv); ev.Type != zk.EventNodeDataChanged {
		t.Fatalf("data watch fired %v", ev.Type)
	}
	if got := Mntr(t, "zk_watch_count"); got != watches {
		t.Fatalf("zk_watch_count %d once both fired, want %d", got, watches)
	}
}

func await(t *testing.T, ch <-chan zk.Event) zk.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not fire")
		return zk.Event{}
	}
}
