package httpgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
		MarshalOptions:   jsonMarshal(res),
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
	}}
}

// jsonMarshal is how the HTTP face writes messages in JSON: every field,
// set or not.
func jsonMarshal(res vanguard.TypeResolver) protojson.MarshalOptions {
	return protojson.MarshalOptions{Resolver: res, EmitUnpopulated: true}
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
// answer in plain text). A REST body that does not say its length
// (chunked) is read here within max (readBody: 413 beyond it, as for one
// that says it). Connect, gRPC and gRPC-Web requests (paths
// /<package>.<Service>/<Method>) pass: vanguard tells their protocol from
// the content type, and cuts their messages at max.
func jsonOnly(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
				fmt.Sprintf("request body of %d bytes is larger than the gateway's limit of %d (--http-max-body)", r.ContentLength, max))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			ct := r.Header.Get("Content-Type")
			mt, params, err := mime.ParseMediaType(ct)
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
				err = fmt.Errorf("charset %s", cs)
			}
			if ct == "" || err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, connect.CodeInvalidArgument,
					fmt.Sprintf("request body must be JSON in UTF-8 (Content-Type: application/json), not %q", ct))
				return
			}
			if r.ContentLength < 0 && !readBody(w, r, max) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a REST body of unknown length (chunked) within max and
// puts it back, with its length: one too large gets the 413 of a body
// that says its length (vanguard answered the reader's error as
// UNAVAILABLE, which clients retry). It reports false when it answered.
func readBody(w http.ResponseWriter, r *http.Request, max int64) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || int64(len(body)) > max:
		writeError(w, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
			fmt.Sprintf("request body larger than the gateway's limit of %d bytes (--http-max-body)", max))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, fmt.Sprintf("reading the request body: %v", err))
		return false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return true
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

// cleanPaths refuses a path with a "." or ".." segment (400): the mux
// would redirect it to its cleaned form, a 3xx no client should follow into
// another resource.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if seg == "." || seg == ".." {
				writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument,
					fmt.Sprintf("path %q has a %q segment", r.URL.EscapedPath(), seg))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// restErrors keeps every REST error a JSON google.rpc.Status with a
// client-error status where the client is at fault. The transcoder answers
// some requests it cannot turn into a call in plain text (a method the
// path does not take: 405; a media type: 415), and reports a request it
// cannot encode (a query parameter that names no field, a path parameter
// that is not UTF-8) as UNKNOWN with 500. zkcoord's handlers never answer
// UNKNOWN (server/errors.go maps every error; a panic is INTERNAL), so on
// REST paths an UNKNOWN is the transcoder refusing the request: it becomes
// INVALID_ARGUMENT (400).
func restErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		ew := &errorRewriter{ResponseWriter: w}
		next.ServeHTTP(ew, r)
		ew.finish()
	})
}

// errorRewriter buffers an error response's body to rewrite it.
type errorRewriter struct {
	http.ResponseWriter
	status  int
	buf     []byte
	passing bool // not an error: written through
}

func (e *errorRewriter) WriteHeader(code int) {
	if e.status != 0 {
		return
	}
	e.status = code
	if code < 400 {
		e.passing = true
		e.ResponseWriter.WriteHeader(code)
	}
}

func (e *errorRewriter) Write(p []byte) (int, error) {
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	if e.passing {
		return e.ResponseWriter.Write(p)
	}
	e.buf = append(e.buf, p...)
	return len(p), nil
}

func (e *errorRewriter) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok && e.passing {
		f.Flush()
	}
}

// finish writes the buffered error, rewritten as needed.
func (e *errorRewriter) finish() {
	if e.passing || e.status == 0 {
		return
	}
	var st struct {
		Code    int    `json:"code"` // google.rpc.Status: the number
		Message string `json:"message"`
	}
	isJSON := json.Unmarshal(e.buf, &st) == nil && st.Message != ""
	switch {
	case isJSON && st.Code == int(connect.CodeUnknown):
		e.Header().Del("Content-Length")
		writeError(e.ResponseWriter, http.StatusBadRequest, connect.CodeInvalidArgument, "bad request: "+st.Message)
	case isJSON:
		e.Header().Set("Content-Type", "application/json")
		e.ResponseWriter.WriteHeader(e.status)
		_, _ = e.ResponseWriter.Write(e.buf)
	default:
		e.Header().Del("Content-Length")
		writeError(e.ResponseWriter, e.status, codeOf(e.status), strings.TrimSpace(string(e.buf)))
	}
}

// codeOf is the gRPC code of a plain HTTP error status.
func codeOf(status int) connect.Code {
	switch status {
	case http.StatusNotFound:
		return connect.CodeNotFound
	case http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case http.StatusForbidden:
		return connect.CodePermissionDenied
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return connect.CodeResourceExhausted
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return connect.CodeUnimplemented
	}
	if status >= 500 {
		return connect.CodeInternal
	}
	return connect.CodeInvalidArgument
}
