package httpgw

import (
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	_ "google.golang.org/grpc/health/grpc_health_v1" // grpc.health.v1.Health in the registry
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/zkcoord/zkcoord/gen/zkcoord/v1" // the services in the registry
)

// TestWithRulesKeepsGeneratedMessages: the services given to vanguard
// carry the HTTP rules, and their methods' requests and responses are the
// generated messages themselves, not copies: vanguard then reads and
// writes the generated Go types (WithTypeResolver), where copies would
// make it fall back to dynamic messages (and a generated message refuses
// a copy's field descriptor).
func TestWithRulesKeepsGeneratedMessages(t *testing.T) {
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := withRules(Services, rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != len(Services) {
		t.Fatalf("%d services, want %d", len(svcs), len(Services))
	}
	withRule := 0
	for i, sd := range svcs {
		if sd == nil || string(sd.FullName()) != Services[i] {
			t.Fatalf("service %d: %v, want %s", i, sd, Services[i])
		}
		for j := range sd.Methods().Len() {
			m := sd.Methods().Get(j)
			for _, msg := range []protoreflect.MessageDescriptor{m.Input(), m.Output()} {
				mt, err := protoregistry.GlobalTypes.FindMessageByName(msg.FullName())
				if err != nil {
					t.Fatalf("%s: %v", msg.FullName(), err)
				}
				if mt.Descriptor() != msg {
					t.Errorf("%s: %s is a copy, not the generated message", m.FullName(), msg.FullName())
				}
			}
			if proto.HasExtension(m.Options(), annotations.E_Http) {
				withRule++
			}
		}
	}
	if withRule != len(rules) {
		t.Errorf("%d methods carry an HTTP rule, want %d (one per rule)", withRule, len(rules))
	}
	lookup := svcs[1].Methods().ByName("Lookup")
	if r := proto.GetExtension(lookup.Options(), annotations.E_Http).(*annotations.HttpRule); r.GetGet() != "/v1/groups/{group}" {
		t.Errorf("Lookup's rule: %v, want GET /v1/groups/{group}", r)
	}
}
