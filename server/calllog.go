package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The call log: every call is logged when it finishes, successful ones at
// debug (a fleet's keepalives would drown the log at info), failures at
// the level of their code (callLevel). Its fields are the ones
// go-grpc-middleware's logging interceptor writes, which the gateway used
// before; unlike it, these interceptors build no field before they know
// the line is wanted. That one built its fields for every call, whatever
// the level: 8 % of the gateway's CPU on the write path, and kept them for
// as long as each WatchGroup stream was open (the heap per idle stream
// fell by 1.2 KiB without it; docs/BENCHMARKS.md, "The call log"). One
// difference: grpc.time_ms is a number here, a string there.

// logUnary logs each finished unary call on log.
func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, nil, start, err)
		return resp, err
	}
}

// logStream logs each finished stream on log.
func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, info, start, err)
		return err
	}
}

// logCall writes the line of a call to method (/service/method; a stream
// when stream is set) that began at start and ended with err, if log wants
// its level.
func logCall(ctx context.Context, log *slog.Logger, method string, stream *grpc.StreamServerInfo, start time.Time, err error) {
	code := status.Code(err)
	lvl := callLevel(code)
	if !log.Enabled(ctx, lvl) {
		return
	}
	call := interceptors.NewServerCallMeta(method, stream, nil)
	attrs := []slog.Attr{
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", call.Service),
		slog.String("grpc.method", call.Method),
		slog.String("grpc.method_type", string(call.Typ)),
		slog.String("grpc.start_time", start.Format(time.RFC3339)),
	}
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	attrs = append(attrs, slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000))
	log.LogAttrs(ctx, lvl, "finished call", attrs...)
}

// callLevel is the level a call that ended with code is logged at:
// successes at debug, failures as go-grpc-middleware's server default
// does (the caller's errors at info, the service's at warn or error).
func callLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK:
		return slog.LevelDebug
	case codes.NotFound, codes.Canceled, codes.AlreadyExists, codes.InvalidArgument, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default: // Unknown, Unimplemented, Internal, DataLoss, and codes not known
		return slog.LevelError
	}
}
