// Package httpgw is zkcoord's HTTP face: the gateway's public gRPC
// services served as HTTP/JSON on resource-shaped paths (rules.yaml), and
// with the Connect protocol (unary and server-streaming calls over HTTP/1.1
// or HTTP/2, JSON or protobuf) and gRPC-Web, for clients without gRPC (PHP
// first).
//
// It is connectrpc's vanguard transcoder in front of the very *grpc.Server
// that serves gRPC: every HTTP request becomes a gRPC call handled in
// process by the same interceptors (authentication, authorization and
// limits, validation, logging) and handlers, with the caller's address and
// TLS identity, and errors keep their gRPC code, message and details (in
// JSON, with the matching HTTP status). docs/DESIGN.md says why vanguard.
//
// Unary calls do not go through grpc.Server.ServeHTTP when Options.Unary
// holds their service (unary.go): a connect-go handler calls the service's
// implementation in process, through the same unary interceptor chain the
// grpc.Server runs, with the peer, metadata, deadline and method that
// ServeHTTP would have given it. Streams still go to the grpc.Server.
// Plain REST GETs and DELETEs skip vanguard too (rest.go): the request
// built from the path and query, the same chain, the answer written once
// in JSON.
package httpgw

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/vanguard"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoregistry"
)

//go:embed openapi/zkcoord.swagger.json
var openapiJSON []byte

// Options configure Handler. A zero field takes its default.
type Options struct {
	// MaxBodyBytes caps a request's body, and each message of a stream
	// (default 1 MiB). Larger requests get 413 (a body) or
	// RESOURCE_EXHAUSTED (a message).
	MaxBodyBytes int64
	// Healthy reports whether the gateway serves (GET /healthz answers 200
	// or 503); nil: always.
	Healthy func() bool
	// Version is the API version the OpenAPI description states.
	Version string
	// Unary, when set, serves the unary methods of the services it holds
	// in process (unary.go); nil: every call goes through the grpc.Server.
	Unary *Unary

	// viaTranscoder (tests only): every REST call through vanguard, none
	// served by rest.go.
	viaTranscoder bool
}

// DefaultMaxBodyBytes is the default cap on a request body.
const DefaultMaxBodyBytes = 1 << 20

// Services are the gRPC services served over HTTP: the public API and
// health; not PeerService (replicas only) nor reflection (gRPC only).
var Services = []string{
	"zkcoord.v1.LeaseService",
	"zkcoord.v1.RegistryService",
	"zkcoord.v1.ElectionService",
	"zkcoord.v1.BarrierService",
	"zkcoord.v1.LockService",
	"zkcoord.v1.SemaphoreService",
	"zkcoord.v1.InspectService",
	"zkcoord.v1.StatusService",
	"grpc.health.v1.Health",
}

// Handler serves s over HTTP: the rules' REST paths, the Connect protocol
// and gRPC-Web for Services, GET /v1/openapi.json (the OpenAPI description
// of the REST paths) and GET /healthz.
func Handler(s *grpc.Server, o Options) (http.Handler, error) {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	rules, err := Rules()
	if err != nil {
		return nil, err
	}
	info := s.GetServiceInfo()
	var names []string
	for _, name := range Services {
		if _, ok := info[name]; ok {
			names = append(names, name)
		}
	}
	schemas, err := withRules(names, rules)
	if err != nil {
		return nil, err
	}
	svcs := make([]*vanguard.Service, len(schemas))
	for i, sd := range schemas {
		h := o.Unary.handler(string(sd.FullName()), s)
		svcs[i] = vanguard.NewServiceWithSchema(sd, h, vanguard.WithTypeResolver(protoregistry.GlobalTypes))
	}
	routes, err := o.Unary.restRoutes(schemas)
	if err != nil {
		return nil, err
	}
	if o.viaTranscoder {
		routes = nil
	}
	t, err := vanguard.NewTranscoder(svcs,
		vanguard.WithCodec(newStrictJSON),
		vanguard.WithUnknownHandler(http.HandlerFunc(notFound)),
		vanguard.WithDefaultServiceOptions(
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithMaxMessageBufferBytes(uint32(min(o.MaxBodyBytes, 1<<31))),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("httpgw: %w", err)
	}
	doc, err := openapi(o.Version)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if o.Healthy != nil && !o.Healthy() {
			http.Error(w, "NOT_SERVING", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("SERVING\n"))
	})
	mux.Handle("/", jsonOnly(o.MaxBodyBytes, ndjson(t, rest(routes, flushHeaders(t)), o.MaxBodyBytes)))
	return http.MaxBytesHandler(cleanPaths(restErrors(mux)), o.MaxBodyBytes), nil
}

// openapi returns the generated OpenAPI description with the API's own
// title and version, without PeerService (not served over HTTP).
func openapi(version string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		return nil, fmt.Errorf("httpgw: embedded OpenAPI description: %w", err)
	}
	if version == "" {
		version = "dev"
	}
	doc["info"] = map[string]any{
		"title":       "zkcoord HTTP/JSON API",
		"description": "ZooKeeper's coordination recipes over HTTP/JSON. Server streams use the Connect protocol: docs/HTTP.md.",
		"version":     version,
	}
	if tags, ok := doc["tags"].([]any); ok {
		kept := tags[:0]
		for _, t := range tags {
			if m, ok := t.(map[string]any); !ok || m["name"] != "PeerService" {
				kept = append(kept, t)
			}
		}
		doc["tags"] = kept
	}
	// The server streams' REST paths (newline-delimited JSON) are not in
	// the generated description: add them, each with its message type.
	if paths, ok := doc["paths"].(map[string]any); ok {
		for _, st := range streams {
			svc, method, _ := strings.Cut(st.procedure, "/")
			resp := "v1" + method + "Response"
			item, _ := paths[st.path].(map[string]any)
			if item == nil {
				item = map[string]any{}
				paths[st.path] = item
			}
			item[strings.ToLower(st.method)] = map[string]any{
				"summary": fmt.Sprintf("%s as a stream: one %s per line of newline-delimited JSON; an error after the first line ends the stream with a line {\"error\": Status}. The request's other fields: the %s.",
					st.procedure, resp, map[bool]string{true: "query", false: "JSON body"}[st.method == "GET"]),
				"operationId": strings.ReplaceAll(svc, "zkcoord.v1.", "") + "_" + method + "_NDJSON",
				"produces":    []string{"application/x-ndjson"},
				"parameters":  []any{map[string]any{"name": st.variable(), "in": "path", "required": true, "type": "string"}},
				"responses": map[string]any{
					"200":     map[string]any{"description": "A stream of zkcoord.v1." + strings.TrimPrefix(resp, "v1") + " messages (proto/zkcoord/v1), one per line."},
					"default": map[string]any{"description": "The call refused before its first message.", "schema": map[string]any{"$ref": "#/definitions/googleRpcStatus"}},
				},
				"tags": []string{strings.TrimPrefix(svc, "zkcoord.v1.")},
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Server returns an http.Server for h with timeouts fit for long-polls and
// streams: headers must come within 10 s, a request's body within a
// minute; responses have no write timeout (a stream or long-poll lasts).
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
