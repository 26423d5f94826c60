package httpgw

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// strictJSON is vanguard's JSON codec, refusing what a client should hear
// about: an unknown field is an error, not silently dropped (a misspelt
// "leaseId" would otherwise register a member without its lease), and a
// body that does not decode is INVALID_ARGUMENT (400), not INTERNAL.
type strictJSON struct{ vanguard.JSONCodec }

func newStrictJSON(res vanguard.TypeResolver) vanguard.Codec {
	return &strictJSON{vanguard.JSONCodec{
		MarshalOptions:   protojson.MarshalOptions{Resolver: res, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
	}}
}

func (c *strictJSON) Unmarshal(data []byte, msg proto.Message) error {
	return malformed(c.JSONCodec.Unmarshal(data, msg))
}

func (c *strictJSON) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return malformed(c.JSONCodec.UnmarshalField(data, msg, field))
}

func malformed(err error) error {
	if err == nil {
		return nil
	}
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("malformed JSON request body: %w", err))
}

// writeError answers with a google.rpc.Status as JSON, the shape of every
// other error of the HTTP face.
func writeError(w http.ResponseWriter, status int, code connect.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"code\":%d,\"message\":%q,\"details\":[]}\n", code, msg)
}

// notFound answers a path that names no method.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, connect.CodeNotFound,
		fmt.Sprintf("no such path: %s %s (see GET /v1/openapi.json; streams: POST /<service>/<method> with the Connect protocol)", r.Method, r.URL.EscapedPath()))
}

// jsonOnly refuses a body larger than max that says so (413), and a REST
// request whose body is not JSON (415), with JSON errors (vanguard would
// answer in plain text). Connect, gRPC and gRPC-Web requests (paths
// /<package>.<Service>/<Method>) pass: vanguard tells their protocol from
// the content type. A body that does not say its length is cut at max by
// the transcoder (RESOURCE_EXHAUSTED, 429).
func jsonOnly(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
				fmt.Sprintf("request body of %d bytes is larger than the gateway's limit of %d (--http-max-body)", r.ContentLength, max))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if ct == "" || err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, connect.CodeInvalidArgument,
					fmt.Sprintf("request body must be JSON (Content-Type: application/json), not %q", ct))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// flushHeaders sends a Connect stream's response headers as soon as the
// call is answered, not with its first message (vanguard writes them but
// leaves them buffered): a client knows its stream is up even when nothing
// happens for a while, e.g. a WatchGroup resumed with nothing new yet.
func flushHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := w.(http.Flusher); ok && strings.HasPrefix(r.Header.Get("Content-Type"), "application/connect+") {
			w = &headerFlusher{ResponseWriter: w, f: f}
		}
		next.ServeHTTP(w, r)
	})
}

type headerFlusher struct {
	http.ResponseWriter
	f http.Flusher
}

func (h *headerFlusher) WriteHeader(code int) {
	h.ResponseWriter.WriteHeader(code)
	h.f.Flush()
}

func (h *headerFlusher) Flush() { h.f.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (h *headerFlusher) Unwrap() http.ResponseWriter { return h.ResponseWriter }
