package httpgw

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"gopkg.in/yaml.v3"
)

//go:embed rules.yaml
var rulesYAML []byte

// Rules returns the HTTP rules of rules.yaml: the REST path of each unary
// RPC.
func Rules() ([]*annotations.HttpRule, error) {
	var cfg struct {
		HTTP struct {
			Rules []map[string]any `yaml:"rules"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(rulesYAML, &cfg); err != nil {
		return nil, fmt.Errorf("httpgw: rules.yaml: %w", err)
	}
	out := make([]*annotations.HttpRule, 0, len(cfg.HTTP.Rules))
	for i, r := range cfg.HTTP.Rules {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("httpgw: rules.yaml rule %d: %w", i, err)
		}
		rule := &annotations.HttpRule{}
		if err := protojson.Unmarshal(b, rule); err != nil {
			return nil, fmt.Errorf("httpgw: rules.yaml rule %d: %w", i, err)
		}
		out = append(out, rule)
	}
	return out, nil
}

// withRules returns the descriptor of each service with its methods' HTTP
// rules set as their google.api.http options, as if the protos carried the
// annotations. (vanguard.WithRules matches selectors by prefix, so a rule
// for LeaseService.KeepAlive would also claim KeepAliveStream; here a
// selector names exactly one method.) The services are copies, in a file
// of their own beside each proto file (which it imports): the generated
// descriptors are not changed, and the copies' requests and responses are
// the generated messages, so that vanguard can use the generated Go types
// (WithTypeResolver) rather than dynamic messages.
func withRules(services []string, rules []*annotations.HttpRule) ([]protoreflect.ServiceDescriptor, error) {
	bySelector := map[string]*annotations.HttpRule{}
	for _, r := range rules {
		if _, dup := bySelector[r.GetSelector()]; dup {
			return nil, fmt.Errorf("httpgw: rules.yaml: two rules for %s", r.GetSelector())
		}
		bySelector[r.GetSelector()] = r
	}
	files := map[string]*descriptorpb.FileDescriptorProto{}
	var order []string
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("httpgw: service %s: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("httpgw: %s is not a service", name)
		}
		orig := sd.ParentFile()
		path := orig.Path()
		fdp, ok := files[path]
		if !ok {
			fdp = &descriptorpb.FileDescriptorProto{
				Name:       proto.String(path + ".http"),
				Package:    proto.String(string(orig.Package())),
				Syntax:     proto.String(orig.Syntax().String()),
				Dependency: []string{path},
			}
			for i := range orig.Imports().Len() {
				fdp.Dependency = append(fdp.Dependency, orig.Imports().Get(i).Path())
			}
			files[path] = fdp
		}
		order = append(order, path)
		svc := protodesc.ToServiceDescriptorProto(sd)
		for _, m := range svc.GetMethod() {
			sel := name + "." + m.GetName()
			r, ok := bySelector[sel]
			if !ok {
				continue
			}
			delete(bySelector, sel)
			if m.Options == nil {
				m.Options = &descriptorpb.MethodOptions{}
			}
			proto.SetExtension(m.Options, annotations.E_Http, r)
		}
		fdp.Service = append(fdp.Service, svc)
	}
	for sel := range bySelector {
		return nil, fmt.Errorf("httpgw: rules.yaml: rule %s names no served method", sel)
	}
	built := map[string]protoreflect.FileDescriptor{}
	out := make([]protoreflect.ServiceDescriptor, 0, len(services))
	for i, name := range services {
		path := order[i]
		fd, ok := built[path]
		if !ok {
			var err error
			if fd, err = protodesc.NewFile(files[path], protoregistry.GlobalFiles); err != nil {
				return nil, fmt.Errorf("httpgw: %s: %w", path, err)
			}
			built[path] = fd
		}
		out = append(out, fd.Services().ByName(protoreflect.FullName(name).Name()))
	}
	return out, nil
}
