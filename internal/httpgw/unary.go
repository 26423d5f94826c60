package httpgw

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Unary holds gRPC services whose unary methods the HTTP face calls in
// process, through the interceptor given to NewUnary, instead of through
// grpc.Server.ServeHTTP (the handler transport: a goroutine, channels and
// gRPC framing per call). Register the services on it as on the
// grpc.Server (it is a grpc.ServiceRegistrar), and give the grpc.Server the
// same interceptor, so that both faces run the same chain. Their streams
// still go to the grpc.Server.
type Unary struct {
	interceptor grpc.UnaryServerInterceptor
	services    map[string]service
}

type service struct {
	desc *grpc.ServiceDesc
	impl any
}

// NewUnary returns a Unary whose calls go through interceptor (nil: none).
func NewUnary(interceptor grpc.UnaryServerInterceptor) *Unary {
	return &Unary{interceptor: interceptor, services: map[string]service{}}
}

// RegisterService keeps impl's unary methods for the HTTP face.
func (u *Unary) RegisterService(desc *grpc.ServiceDesc, impl any) {
	u.services[desc.ServiceName] = service{desc: desc, impl: impl}
}

// handler is the http.Handler vanguard gives the service name's gRPC
// calls: its unary methods served in process (connect-go speaking the gRPC
// protocol), anything else by fallback.
func (u *Unary) handler(name string, fallback http.Handler) http.Handler {
	if u == nil {
		return fallback
	}
	if _, ok := u.services[name]; !ok {
		return fallback
	}
	mux := http.NewServeMux()
	mux.Handle("/", fallback)
	for _, call := range u.calls(name) {
		full := call.info.FullMethod
		h := connect.NewUnaryHandler(full, call.serve,
			connect.WithCodec(rawCodec{}),
			connect.WithReadMaxBytes(grpcMaxRecvMsgSize),
			// No compression, as the grpc.Server (which has no gzip
			// registered): vanguard would only decompress the answers.
			connect.WithCompression("gzip", nil, nil),
		)
		mux.Handle("POST "+full, callContext(full, h))
	}
	return mux
}

// calls are the unary methods of the service name that u holds, by
// method name.
func (u *Unary) calls(name string) map[string]*unaryCall {
	svc, ok := u.services[name]
	if !ok {
		return nil
	}
	out := make(map[string]*unaryCall, len(svc.desc.Methods))
	for i := range svc.desc.Methods {
		m := &svc.desc.Methods[i]
		out[m.MethodName] = &unaryCall{
			info:        &grpc.UnaryServerInfo{Server: svc.impl, FullMethod: "/" + name + "/" + m.MethodName},
			handler:     m.Handler,
			interceptor: u.interceptor,
		}
	}
	return out
}

// grpcMaxRecvMsgSize is the grpc.Server's default limit on a request
// message (zkcoord sets no other), kept here so that a body limit above it
// (--http-max-body) refuses the same messages on both paths.
const grpcMaxRecvMsgSize = 4 << 20

// rawMessage is a message's protobuf encoding: the connect handler only
// carries bytes, decoded and encoded by the gRPC method's own code.
type rawMessage struct{ b []byte }

// rawCodec is connect's "proto" codec for rawMessage; other messages (the
// protocol's own, such as an error's details) are protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(*rawMessage); ok {
		return m.b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(b []byte, v any) error {
	if m, ok := v.(*rawMessage); ok {
		m.b = append([]byte(nil), b...) // b is connect's pooled buffer
		return nil
	}
	return proto.Unmarshal(b, v.(proto.Message))
}

// unaryCall is one unary method of a service.
type unaryCall struct {
	info        *grpc.UnaryServerInfo
	handler     grpc.MethodHandler
	interceptor grpc.UnaryServerInterceptor
}

// serve runs the method as the grpc.Server would: the request decoded by
// the method's handler, through the interceptor; a gRPC status error
// becomes the connect error of the same code, message and details.
func (c *unaryCall) serve(ctx context.Context, req *connect.Request[rawMessage]) (*connect.Response[rawMessage], error) {
	dec := func(m any) error {
		if err := proto.Unmarshal(req.Msg.b, m.(proto.Message)); err != nil {
			return status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
		}
		return nil
	}
	out, err := c.handler(c.info.Server, ctx, dec, c.interceptor)
	// What the handler set with grpc.SetHeader and SetTrailer, sent with
	// an answer or an error alike.
	if st, ok := grpc.ServerTransportStreamFromContext(ctx).(*transportStream); ok && (st.header != nil || st.trailer != nil) {
		if ci, ok := connect.CallInfoForHandlerContext(ctx); ok {
			copyMD(ci.ResponseHeader(), st.header)
			copyMD(ci.ResponseTrailer(), st.trailer)
		}
	}
	if err != nil {
		return nil, connectError(err)
	}
	b, err := proto.Marshal(out.(proto.Message))
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&rawMessage{b: b}), nil
}

// connectError is err as the grpc.Server would send it (grpcStatus), as
// a connect error.
func connectError(err error) *connect.Error {
	st := grpcStatus(err)
	cerr := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if ed, err := connect.NewErrorDetail(d); err == nil {
			cerr.AddDetail(ed)
		}
	}
	return cerr
}

// callContext gives the call the context grpc.Server.ServeHTTP would
// (incoming).
func callContext(method string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, err := incoming(r, method)
		if err != nil {
			// A trailers-only gRPC answer (vanguard speaks gRPC to this
			// handler): INVALID_ARGUMENT with the reason.
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", strconv.Itoa(int(codes.InvalidArgument)))
			w.Header().Set("Grpc-Message", url.PathEscape(err.Error()))
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// incoming is the context grpc.Server.ServeHTTP gives a call of method:
// the caller's address and TLS identity (peer), the request's headers as
// incoming metadata, and the method (grpc.Method) with a transport stream
// that keeps what the handler sets with grpc.SetHeader and SetTrailer. It
// fails on a binary header that does not decode.
func incoming(r *http.Request, method string) (context.Context, error) {
	p := &peer.Peer{Addr: strAddr(r.RemoteAddr)}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		p.LocalAddr = la
	}
	if r.TLS != nil {
		p.AuthInfo = credentials.TLSInfo{State: *r.TLS, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	}
	md := make(metadata.MD, len(r.Header)+2)
	md["content-type"] = []string{r.Header.Get("Content-Type")}
	if r.Host != "" {
		md[":authority"] = []string{r.Host}
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if reserved(k) {
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				b, err := connect.DecodeBinaryHeader(v)
				if err != nil {
					return nil, errors.New("malformed binary metadata in header " + k)
				}
				v = string(b)
			}
			md[k] = append(md[k], v)
		}
	}
	ctx := peer.NewContext(r.Context(), p)
	ctx = metadata.NewIncomingContext(ctx, md)
	return grpc.NewContextWithServerTransportStream(ctx, &transportStream{method: method}), nil
}

// reserved reports whether grpc-go keeps header k out of the metadata.
func reserved(k string) bool {
	switch k {
	case "content-type", "grpc-message-type", "grpc-encoding", "grpc-message", "grpc-status", "grpc-timeout", "te":
		return true
	}
	return k != "" && k[0] == ':'
}

// strAddr is the caller's address as net/http gives it (IP:port, TCP).
type strAddr string

func (a strAddr) Network() string {
	if a != "" {
		return "tcp"
	}
	return ""
}

func (a strAddr) String() string { return string(a) }

// transportStream is the grpc.ServerTransportStream of an in-process call:
// its method, and the headers and trailers the handler sets.
type transportStream struct {
	method          string
	header, trailer metadata.MD
}

func (s *transportStream) Method() string { return s.method }

func (s *transportStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *transportStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *transportStream) SetTrailer(md metadata.MD) error {
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// copyMD adds md to h, binary values base64-encoded as gRPC sends them.
func copyMD(h http.Header, md metadata.MD) {
	for k, vs := range md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = connect.EncodeBinaryHeader([]byte(v))
			}
			h.Add(k, v)
		}
	}
}
