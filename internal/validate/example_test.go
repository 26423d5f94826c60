package validate_test

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/validate"
)

// A server installs both interceptors, so that unary requests and every
// message received on a stream are checked before a handler sees them.
func Example() {
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(validate.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(validate.StreamServerInterceptor()),
	)
	defer srv.Stop()
	// Register the zkcoord services on srv, then Serve.
}

// Request refuses a registration with a bad group name, a bad metadata key
// and no owner; the BadRequest detail lists all three.
func ExampleRequest() {
	err := validate.Request(&zkcoordv1.RegisterRequest{
		Group:    "../etc",
		Metadata: map[string]string{"zone": "eu-1", "bad key": "x"},
	})
	st := status.Convert(err)
	fmt.Println(st.Code())
	fmt.Println(st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fmt.Printf("%s: %s\n", fv.GetField(), fv.GetDescription())
			}
		}
	}

	fmt.Println(validate.Request(&zkcoordv1.RegisterRequest{Group: "api", Persistent: true}))
	// Output:
	// InvalidArgument
	// invalid RegisterRequest.group: must be 1-128 characters of [A-Za-z0-9._:@=-], not starting with '.'
	// group: must be 1-128 characters of [A-Za-z0-9._:@=-], not starting with '.'
	// metadata["bad key"]: key must be 1-128 characters of [A-Za-z0-9._:/-]
	// lease_id: one of lease_id, ttl or persistent is required
	// <nil>
}
