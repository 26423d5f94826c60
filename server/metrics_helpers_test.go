package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// scraped is one scrape of /metrics, by family name.
type scraped map[string]*dto.MetricFamily

// labels selects samples: each must have these label values.
type labels map[string]string

// scrapeURL reads url as Prometheus would and parses its text format.
func scrapeURL(t *testing.T, url string) scraped {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value sums the samples of family name that match sel: a counter's or a
// gauge's value, a histogram's count of observations. No sample: 0.
func (s scraped) value(name string, sel labels) float64 {
	f := s[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		if !matches(m, sel) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func matches(m *dto.Metric, sel labels) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := sel[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(sel)
}

// has reports whether the scrape has a series of name: a family, or a
// histogram's _bucket, _sum or _count.
func (s scraped) has(name string) bool {
	if _, ok := s[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := s[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
	}
	return false
}

// check is a condition on a value, with its description.
type check struct {
	ok   func(float64) bool
	desc string
}

func eq(want float64) check {
	return check{func(v float64) bool { return v == want }, fmt.Sprintf("= %v", want)}
}

func atLeast(want float64) check {
	return check{func(v float64) bool { return v >= want }, fmt.Sprintf(">= %v", want)}
}

// want checks the value of name's samples matching sel.
func (s scraped) want(t *testing.T, what, name string, sel labels, c check) {
	t.Helper()
	if _, ok := s[name]; !ok && !c.ok(0) {
		t.Errorf("%s: no %s on /metrics", what, name)
		return
	}
	if v := s.value(name, sel); !c.ok(v) {
		t.Errorf("%s: %s%v = %v, want %s", what, name, sel, v, c.desc)
	}
}

// metricRE finds the names of zkcoord's metrics and gRPC server metrics in
// an expression.
var metricRE = regexp.MustCompile(`\b(?:zkcoord|grpc_server)_[a-z_]+\b`)

// metricNames parses a Grafana dashboard (JSON) or a Prometheus rule file
// (YAML) and returns the metric names its expressions use (a target's or
// a rule's expr, a variable's query), sorted, each once. It fails when the
// file does not parse or uses none.
func metricNames(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if strings.HasSuffix(file, ".json") {
		err = json.Unmarshal(b, &doc)
	} else {
		err = yaml.Unmarshal(b, &doc)
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					names = append(names, metricRE.FindAllString(s, -1)...)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		t.Fatalf("%s: no metric names in its expressions", file)
	}
	return names
}
