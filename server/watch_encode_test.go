package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/registry"
)

func encodeTestEvent() *registry.Event {
	return &registry.Event{Type: registry.Joined, Rev: 12345678, Member: &registry.Member{Group: "web", ID: "w-0042",
		Value: "10.0.0.42:8080", Metadata: map[string]string{"zone": "eu-1", "version": "1.2.3"},
		CreateRev: 12345678, ModRev: 12345678, CreatedAt: time.Unix(1_800_000_000, 0)}}
}

// TestSharedEventEncoding: a message carrying a shared encoded event
// decodes as the message built the plain way.
func TestSharedEventEncoding(t *testing.T) {
	ev := eventPB(encodeTestEvent())
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	shared := &pb.WatchResponse{WatchId: 7}
	shared.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, eventField, protowire.BytesType), b))
	wire, err := proto.Marshal(shared)
	if err != nil {
		t.Fatal(err)
	}
	var got pb.WatchResponse
	if err := proto.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if want := (&pb.WatchResponse{WatchId: 7, Event: ev}); !proto.Equal(&got, want) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}
}

// BenchmarkWatchEventEncode: one event encoded for 1,000 watches of one
// stream, each message built with the event (Each) or with its encoding
// shared (Shared, what sendEvents does). ns/op is per 1,000 messages.
func BenchmarkWatchEventEncode(b *testing.B) {
	ev := encodeTestEvent()
	b.Run("Each", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			p := eventPB(ev)
			for id := range int64(1000) {
				if _, err := proto.Marshal(&pb.WatchResponse{WatchId: id, Event: p}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Shared", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			e, err := proto.Marshal(eventPB(ev))
			if err != nil {
				b.Fatal(err)
			}
			raw := protowire.AppendBytes(protowire.AppendTag(nil, eventField, protowire.BytesType), e)
			for id := range int64(1000) {
				m := &pb.WatchResponse{WatchId: id}
				m.ProtoReflect().SetUnknown(raw)
				if _, err := proto.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
