package validate

import (
	"context"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Request checks msg against the rules for its type. It returns nil when
// msg is valid or of a type without rules; otherwise a status error with
// codes.InvalidArgument whose message names the first bad field and whose
// errdetails.BadRequest detail lists every violation.
func Request(msg any) error {
	fv, _ := rules(msg)
	if len(fv) == 0 {
		return nil
	}
	st := status.Newf(codes.InvalidArgument, "invalid %s.%s: %s",
		messageName(msg), fv[0].GetField(), fv[0].GetDescription())
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: fv}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// messageName returns msg's short proto name, for example "RegisterRequest".
func messageName(msg any) string {
	if m, ok := msg.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().Name())
	}
	return "request"
}

// UnaryServerInterceptor checks each unary request with Request. An invalid
// request is refused with codes.InvalidArgument and never reaches the
// handler.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := Request(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor checks, with Request, every message the handler
// receives on a stream. RecvMsg returns the InvalidArgument error in place
// of an invalid message; the handler returns it and the stream ends with
// it. For a server-streaming call the request is received before the
// service method runs, so an invalid request never reaches it; on a
// bidirectional stream (KeepAliveStream) the first invalid message ends the
// stream.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &recvValidator{ServerStream: ss})
	}
}

// recvValidator is a grpc.ServerStream whose RecvMsg validates.
type recvValidator struct {
	grpc.ServerStream
}

// RecvMsg receives the next message into m and checks it with Request.
func (s *recvValidator) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return Request(m)
}
