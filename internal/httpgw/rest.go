package httpgw

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// The REST paths without a body (GET and DELETE: Lookup, GetLease,
// Deregister, ...) of the unary methods that Unary holds are served here
// when the request is plain, without vanguard: the request message built
// from the path and the query, the method called in process through the
// interceptor (as unary.go's calls), the answer encoded once, in JSON.
// Through vanguard the same call is transcoded twice each way (JSON to
// the gRPC protocol and protobuf for the in-process handler, and back),
// which was most of an HTTP Lookup's cost (docs/BENCHMARKS.md, "A REST
// path without the transcoder").
//
// A request is plain when everything in it is something this file reads
// exactly as vanguard would: a path of literal segments and variables
// with no escapes, verbs or empty segments; query parameters that each
// name one top-level field of a scalar kind (string, bool, integers, an
// enum, google.protobuf.Duration) once, and parse; no body; no header
// that vanguard reads beyond REST's (plainHeaders), and a JSON
// Content-Type or none. Anything else, including every request that would
// be refused, goes to vanguard, so that an error's status and words are
// the transcoder's own.
//
// One difference is not in the answer: the method sees the request's own
// headers as metadata (its content-type, if any, and its accept-encoding),
// where through vanguard it sees those of vanguard's gRPC request
// (content-type application/grpc+proto, grpc-accept-encoding); zkcoord's
// interceptors read only authorization, which is the same on both.
// TestRESTLikeVanguard holds the two to the same answers.

// restRoute is one REST path of a method, served here.
type restRoute struct {
	verb string
	segs []string                       // a literal, or "" for a variable
	vars []protoreflect.FieldDescriptor // the variables' fields, in order
	in   protoreflect.MessageDescriptor // the request's type
	call *unaryCall
}

// restRoutes returns the routes of the rules (with their additional
// bindings) of schemas' methods that u holds, whose paths this file can
// read: the others stay with vanguard.
func (u *Unary) restRoutes(schemas []protoreflect.ServiceDescriptor) ([]restRoute, error) {
	if u == nil {
		return nil, nil
	}
	var out []restRoute
	for _, sd := range schemas {
		calls := u.calls(string(sd.FullName()))
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			call, ok := calls[string(md.Name())]
			if !ok || md.IsStreamingClient() || md.IsStreamingServer() {
				continue
			}
			rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
				if rt, ok := newRESTRoute(r, md.Input(), call); ok {
					out = append(out, rt)
				}
			}
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[i].overlaps(out[j]) {
				return nil, fmt.Errorf("httpgw: rules.yaml: %s %s and %s take the same paths", out[i].verb, &out[i], &out[j])
			}
		}
	}
	return out, nil
}

// newRESTRoute is rule's route when it has no body and a path of literal
// segments and single-segment variables naming top-level scalar fields.
func newRESTRoute(rule *annotations.HttpRule, in protoreflect.MessageDescriptor, call *unaryCall) (restRoute, bool) {
	var verb, path string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		verb, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Delete:
		verb, path = http.MethodDelete, p.Delete
	default:
		return restRoute{}, false
	}
	if rule.GetBody() != "" || !strings.HasPrefix(path, "/") {
		return restRoute{}, false
	}
	rt := restRoute{verb: verb, in: in, call: call}
	for _, seg := range strings.Split(path[1:], "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name, ok = strings.CutSuffix(name, "}")
			fd := in.Fields().ByName(protoreflect.Name(name))
			if !ok || fd == nil || !scalar(fd) {
				return restRoute{}, false
			}
			rt.segs = append(rt.segs, "")
			rt.vars = append(rt.vars, fd)
			continue
		}
		if seg == "" || strings.ContainsAny(seg, "{}*:%") {
			return restRoute{}, false
		}
		rt.segs = append(rt.segs, seg)
	}
	return rt, true
}

// String is the route's path template.
func (rt *restRoute) String() string {
	var b strings.Builder
	v := 0
	for _, seg := range rt.segs {
		b.WriteByte('/')
		if seg == "" {
			seg = "{" + string(rt.vars[v].Name()) + "}"
			v++
		}
		b.WriteString(seg)
	}
	return b.String()
}

// overlaps reports whether a path could match both routes.
func (rt restRoute) overlaps(o restRoute) bool {
	if rt.verb != o.verb || len(rt.segs) != len(o.segs) {
		return false
	}
	for i := range rt.segs {
		if rt.segs[i] != "" && o.segs[i] != "" && rt.segs[i] != o.segs[i] {
			return false
		}
	}
	return true
}

// scalar reports whether fd is a singular field whose query or path
// value this file parses: a string, bool, integer or enum, or a
// google.protobuf.Duration.
func scalar(fd protoreflect.FieldDescriptor) bool {
	if fd.IsList() || fd.IsMap() {
		return false
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BoolKind, protoreflect.EnumKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	case protoreflect.MessageKind:
		return fd.Message().FullName() == "google.protobuf.Duration"
	}
	return false
}

// fieldValue is one field of a request to set.
type fieldValue struct {
	fd protoreflect.FieldDescriptor
	v  protoreflect.Value
}

// plainRequest returns r's path without its leading "/" when r has no
// body, and a path and headers that every route reads as vanguard does
// (plainHeaders, plainPath), and false otherwise.
func plainRequest(r *http.Request) (string, bool) {
	if r.ContentLength != 0 || r.URL.RawPath != "" || !plainHeaders(r.Header) {
		return "", false
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/")
	return path, ok && plainPath(path)
}

// parse returns the request's fields when r, a plain request (above)
// whose path is path, is one for this route, and false otherwise.
func (rt *restRoute) parse(r *http.Request, path string) ([]fieldValue, bool) {
	if r.Method != rt.verb {
		return nil, false
	}
	fields := make([]fieldValue, 0, len(rt.vars)+2)
	v := 0
	for i, seg := range rt.segs {
		s, rest, more := strings.Cut(path, "/")
		if more != (i < len(rt.segs)-1) || s == "" {
			return nil, false
		}
		path = rest
		if seg != "" {
			if s != seg {
				return nil, false
			}
			continue
		}
		val, ok := parseScalar(rt.vars[v], s)
		if !ok {
			return nil, false
		}
		fields = append(fields, fieldValue{rt.vars[v], val})
		v++
	}
	if r.URL.RawQuery == "" {
		return fields, true
	}
	for key, vals := range r.URL.Query() {
		fd := rt.in.Fields().ByJSONName(key)
		if fd == nil {
			fd = rt.in.Fields().ByName(protoreflect.Name(key))
		}
		if fd == nil || len(vals) != 1 || !scalar(fd) {
			return nil, false
		}
		for _, f := range fields {
			if f.fd == fd {
				return nil, false // named twice: vanguard's order decides
			}
		}
		val, ok := parseScalar(fd, vals[0])
		if !ok || !utf8.ValidString(vals[0]) {
			return nil, false
		}
		fields = append(fields, fieldValue{fd, val})
	}
	return fields, true
}

// plainHeaders reports whether h has none of the headers vanguard reads
// beyond REST's: a timeout (X-Server-Timeout), a Content-Encoding, one
// that could make the request another protocol (Connect-*, or more than
// one Content-Type) or that passes to the gRPC handler with a meaning
// (Grpc-*: Grpc-Timeout sets the call's deadline); and a Content-Type, if
// any, that is REST's JSON.
func plainHeaders(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, "Connect-") || strings.HasPrefix(k, "Grpc-") {
			return false
		}
	}
	if len(h["Content-Encoding"]) != 0 || len(h["X-Server-Timeout"]) != 0 {
		return false
	}
	switch ct := h["Content-Type"]; {
	case len(ct) == 0:
		return true
	case len(ct) > 1:
		return false
	default:
		return ct[0] == "application/json" || ct[0] == "application/json; charset=utf-8"
	}
}

// plainPath reports whether path is printable ASCII without the
// characters vanguard reads in its own way (a verb's ":", an escape).
func plainPath(path string) bool {
	for i := range len(path) {
		if c := path[i]; c <= ' ' || c >= 0x7f || c == ':' || c == '%' {
			return false
		}
	}
	return true
}

// parseScalar reads s as the value of fd as vanguard reads a query or
// path parameter: numbers and bools as JSON, an enum by number or name, a
// Duration in its JSON form.
func parseScalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, bool) {
	var err error
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), true
	case protoreflect.BoolKind:
		var b bool
		err = json.Unmarshal([]byte(s), &b)
		return protoreflect.ValueOfBool(b), err == nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		var x int32
		err = json.Unmarshal([]byte(s), &x)
		return protoreflect.ValueOfInt32(x), err == nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		var x int64
		err = json.Unmarshal([]byte(s), &x)
		return protoreflect.ValueOfInt64(x), err == nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		var x uint32
		err = json.Unmarshal([]byte(s), &x)
		return protoreflect.ValueOfUint32(x), err == nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		var x uint64
		err = json.Unmarshal([]byte(s), &x)
		return protoreflect.ValueOfUint64(x), err == nil
	case protoreflect.EnumKind:
		var n protoreflect.EnumNumber
		if json.Unmarshal([]byte(s), &n) == nil {
			return protoreflect.ValueOfEnum(n), true
		}
		ev := fd.Enum().Values().ByName(protoreflect.Name(s))
		if ev == nil {
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfEnum(ev.Number()), true
	case protoreflect.MessageKind:
		t, err := protoregistry.GlobalTypes.FindMessageByName(fd.Message().FullName())
		if err != nil {
			return protoreflect.Value{}, false
		}
		m := t.New()
		b, _ := json.Marshal(s)
		if protojson.Unmarshal(b, m.Interface()) != nil {
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfMessage(m), true
	}
	return protoreflect.Value{}, false
}

// restJSON is the JSON of answers and errors, as vanguard's codec writes
// them (newStrictJSON, with the same resolver).
var restJSON = jsonMarshal(protoregistry.GlobalTypes)

// restBuffers are answers' buffers, kept for the next answer.
var restBuffers = sync.Pool{New: func() any { return new([]byte) }}

// serve calls the method with fields and writes its answer or error as
// vanguard does for REST: the JSON answer (200), or the google.rpc.Status
// with the code's HTTP status; with the headers the handler set (not its
// trailers, which REST has no place for).
func (rt *restRoute) serve(w http.ResponseWriter, r *http.Request, fields []fieldValue) {
	c := rt.call
	ctx, err := incoming(r, c.info.FullMethod)
	var out any
	if err != nil {
		err = status.Error(codes.InvalidArgument, err.Error())
	} else {
		dec := func(m any) error {
			msg := m.(proto.Message).ProtoReflect()
			for _, f := range fields {
				msg.Set(f.fd, f.v)
			}
			return nil
		}
		out, err = c.handler(c.info.Server, ctx, dec, c.interceptor)
		if st, ok := grpc.ServerTransportStreamFromContext(ctx).(*transportStream); ok {
			copyMD(w.Header(), st.header) // trailers are dropped, as vanguard does
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	code, msg := http.StatusOK, proto.Message(nil)
	if err != nil {
		st := grpcStatus(err)
		code, msg = httpStatus(connect.Code(st.Code())), st.Proto()
	} else {
		msg = out.(proto.Message)
	}
	bp := restBuffers.Get().(*[]byte)
	defer restBuffers.Put(bp)
	b, err := restJSON.MarshalAppend((*bp)[:0], msg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, connect.CodeInternal, "encoding the answer: "+err.Error())
		return
	}
	*bp = b
	// Whole, with its length, as vanguard sends it (net/http would chunk
	// an answer over 2 KiB written before the handler returns).
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// grpcStatus is err as the grpc.Server would send it: a context error
// keeps its code, any other non-status error is UNKNOWN.
func grpcStatus(err error) *status.Status {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	return st
}

// rest serves the plain requests of routes, and passes the others to next.
func rest(routes []restRoute, next http.Handler) http.Handler {
	if len(routes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path, ok := plainRequest(r); ok {
			for i := range routes {
				if fields, ok := routes[i].parse(r, path); ok {
					routes[i].serve(w, r, fields)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
