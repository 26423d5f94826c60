package zkcoord_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment files are checked, not run (no Docker engine or
// Kubernetes here): every zkcoord flag and ZKCOORD_ variable they give
// exists in `zkcoord serve --help`, the ports they open, probe, publish
// and scrape are the ones zkcoord listens on, and Prometheus's
// configuration is valid.

// serveFlags builds zkcoord and returns the flags of `zkcoord serve`.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zkcoord")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/zkcoord").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput() // exits 0 on -help
	flags := map[string]bool{}
	// pflag's help: "  -h, --help", "      --listen string".
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-z], )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] || !flags["metrics-listen"] {
		t.Fatalf("zkcoord serve --help lists no --listen or --metrics-listen:\n%s", out)
	}
	return flags
}

// zkcoordArgs reads the flags of a zkcoord command line and environment
// and checks each exists; it returns the port of each address flag.
func zkcoordArgs(t *testing.T, where string, flags map[string]bool, args []string, env map[string]string) map[string]int {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Errorf("%s: command %v: want serve first", where, args)
		return nil
	}
	given := map[string]string{}
	for k, v := range env {
		if name, ok := strings.CutPrefix(k, "ZKCOORD_"); ok {
			given[strings.ReplaceAll(strings.ToLower(name), "_", "-")] = v
		}
	}
	for i := 1; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			t.Errorf("%s: argument %q is not a flag", where, args[i])
			continue
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			given[n] = v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			given[name], i = args[i+1], i+1
		} else {
			given[name] = "true"
		}
	}
	ports := map[string]int{}
	for name, v := range given {
		if !flags[name] {
			t.Errorf("%s: zkcoord serve has no flag --%s", where, name)
		}
		if strings.HasSuffix(name, "listen") {
			_, p, err := net.SplitHostPort(v)
			port, perr := strconv.Atoi(p)
			if err != nil || perr != nil {
				t.Errorf("%s: --%s %q: want host:port", where, name, v)
			}
			ports[name] = port
		}
	}
	if ports["listen"] == 0 || ports["metrics-listen"] == 0 {
		t.Errorf("%s: no --listen or --metrics-listen port: %v", where, given)
	}
	return ports
}

// TestComposeFile checks deploy/compose.yaml: the zkcoord services' flags
// and variables exist, the ports they publish are the ones they listen
// on, and Prometheus scrapes each one's --metrics-listen port.
func TestComposeFile(t *testing.T) {
	flags := serveFlags(t)
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Expose      []string          `yaml:"expose"`
		} `yaml:"services"`
	}
	readYAML(t, "deploy/compose.yaml", &compose)
	metricsAt := map[string]int{}
	for name, s := range compose.Services {
		if s.Build == nil {
			continue // not zkcoord
		}
		ports := zkcoordArgs(t, "compose "+name, flags, s.Command, s.Environment)
		open := map[int]bool{}
		for _, p := range s.Ports {
			n, _ := strconv.Atoi(p[strings.LastIndex(p, ":")+1:])
			open[n] = true
		}
		for _, p := range s.Expose {
			n, _ := strconv.Atoi(p)
			open[n] = true
		}
		for flag, port := range ports {
			if !open[port] {
				t.Errorf("compose %s: --%s port %d is neither published nor exposed", name, flag, port)
			}
		}
		metricsAt[name] = ports["metrics-listen"]
	}
	if len(metricsAt) < 2 {
		t.Fatalf("compose: %d zkcoord services, want two replicas", len(metricsAt))
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &prom)
	scraped := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, _ := net.SplitHostPort(target)
				if want, ok := metricsAt[host]; !ok || strconv.Itoa(want) != port {
					t.Errorf("prometheus scrapes %s: no zkcoord service %s with --metrics-listen on %s", target, host, port)
				}
				scraped[host] = true
			}
		}
	}
	for name := range metricsAt {
		if !scraped[name] {
			t.Errorf("prometheus does not scrape %s", name)
		}
	}
	if !slices.Contains(prom.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml loads %v, not alerts.yml", prom.RuleFiles)
	}
	if out, err := exec.Command("promtool", "check", "config", "deploy/prometheus/prometheus.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// Selector is a Deployment's or a PodDisruptionBudget's
		// {matchLabels: ...}, a Service's labels.
		Selector map[string]any `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Grace      int            `yaml:"terminationGracePeriodSeconds"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		MinAvailable any `yaml:"minAvailable"`
		Ports        []struct {
			Name       string `yaml:"name"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// selects reports whether o's selector (matchLabels, or a Service's own)
// picks pods labelled labels, and is not empty.
func (o k8sObject) selects(labels map[string]string) bool {
	sel := o.Spec.Selector
	if m, ok := sel["matchLabels"].(map[string]any); ok {
		sel = m
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

type k8sContainer struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Readiness struct {
		GRPC struct {
			Port int `yaml:"port"`
		} `yaml:"grpc"`
	} `yaml:"readinessProbe"`
	Lifecycle struct {
		PreStop map[string]any `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

// TestKubernetesManifests checks deploy/k8s: the Deployment's flags and
// variables exist, its container ports are the ones zkcoord listens on,
// readiness probes grpc.health on --listen, a preStop pause precedes the
// drain, the Service's target ports are the container's, and the
// PodDisruptionBudget selects the Deployment's pods.
func TestKubernetesManifests(t *testing.T) {
	flags := serveFlags(t)
	b, err := os.ReadFile("deploy/k8s/zkcoord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("deploy/k8s/zkcoord.yaml: %v", err)
		}
		byKind[o.Kind] = o
	}
	dep, svc, pdb := byKind["Deployment"], byKind["Service"], byKind["PodDisruptionBudget"]
	if len(dep.Spec.Template.Spec.Containers) != 1 || svc.Kind == "" || pdb.Kind == "" {
		t.Fatalf("want a Deployment of one container, a Service and a PodDisruptionBudget; got %v", byKind)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	ports := zkcoordArgs(t, "Deployment", flags, c.Args, env)
	named := map[string]int{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	for flag, port := range ports {
		if !slices.Contains(slicesValues(named), port) {
			t.Errorf("Deployment: --%s port %d is not a container port %v", flag, port, named)
		}
	}
	if c.Readiness.GRPC.Port != ports["listen"] {
		t.Errorf("readiness probes grpc on %d, want --listen's %d", c.Readiness.GRPC.Port, ports["listen"])
	}
	if c.Lifecycle.PreStop == nil {
		t.Error("no preStop: the pod gets SIGTERM while endpoints still send it work")
	}
	if g, ok := grace(c.Args); dep.Spec.Template.Spec.Grace <= g {
		t.Errorf("terminationGracePeriodSeconds %d not above --shutdown-timeout %ds (given: %v)", dep.Spec.Template.Spec.Grace, g, ok)
	}
	for _, p := range svc.Spec.Ports {
		switch tp := p.TargetPort.(type) {
		case string:
			if _, ok := named[tp]; !ok {
				t.Errorf("Service port %s targets %q, not a container port", p.Name, tp)
			}
		case int:
			if !slices.Contains(slicesValues(named), tp) {
				t.Errorf("Service port %s targets %d, not a container port", p.Name, tp)
			}
		}
	}
	pods := dep.Spec.Template.Metadata.Labels
	for _, o := range []k8sObject{dep, svc, pdb} {
		if !o.selects(pods) {
			t.Errorf("%s's selector %v does not pick the Deployment's pods %v", o.Kind, o.Spec.Selector, pods)
		}
	}
}

// grace is the --shutdown-timeout of args in whole seconds (10, the
// default, when not given).
func grace(args []string) (int, bool) {
	for i, a := range args {
		if a == "--shutdown-timeout" && i+1 < len(args) {
			var s int
			if _, err := fmt.Sscanf(args[i+1], "%ds", &s); err == nil {
				return s, true
			}
		}
	}
	return 10, false
}

func slicesValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
