package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Better says which way a figure improves.
type Better int

const (
	Higher Better = iota // throughput
	Lower                // latency, memory
)

// Figure is one measured quantity of the gateway, with its direct
// counterpart when there is one, and its target.
type Figure struct {
	Workload string  `json:"workload"`
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Gateway  float64 `json:"gateway"`
	// Direct is the same work done with go-zookeeper; NaN when there is no
	// counterpart.
	Direct float64 `json:"direct"`
	Better Better  `json:"better"`
	// Target is what the figure must meet, in words; Met whether it does.
	// A figure without a target is context.
	Target string `json:"target,omitempty"`
	Met    bool   `json:"met"`
	Note   string `json:"note,omitempty"`
}

// Ratio is gateway / direct, NaN without a direct figure.
func (f Figure) Ratio() float64 {
	if math.IsNaN(f.Direct) || f.Direct == 0 {
		return math.NaN()
	}
	return f.Gateway / f.Direct
}

func (f Figure) verdict() string {
	switch {
	case f.Target == "":
		return ""
	case f.Met:
		return "met"
	default:
		return "MISSED"
	}
}

// ms converts a duration to milliseconds as a float.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratioFigure builds a figure whose target is a ratio to direct: at least
// min (Higher) or at most max (Lower).
func ratioFigure(workload, name, unit string, gw, direct float64, better Better, bound float64) Figure {
	f := Figure{Workload: workload, Name: name, Unit: unit, Gateway: gw, Direct: direct, Better: better}
	if better == Higher {
		f.Target = fmt.Sprintf(">= %.2gx direct", bound)
		f.Met = f.Ratio() >= bound
	} else {
		f.Target = fmt.Sprintf("<= %.2gx direct", bound)
		f.Met = f.Ratio() <= bound
	}
	return f
}

// absFigure builds a figure with an absolute bound.
func absFigure(workload, name, unit string, gw, direct float64, better Better, bound float64) Figure {
	f := Figure{Workload: workload, Name: name, Unit: unit, Gateway: gw, Direct: direct, Better: better}
	if better == Higher {
		f.Target = fmt.Sprintf(">= %s %s", num(bound), unit)
		f.Met = gw >= bound
	} else {
		f.Target = fmt.Sprintf("<= %s %s", num(bound), unit)
		f.Met = gw <= bound
	}
	return f
}

// info builds a figure without a target.
func info(workload, name, unit string, gw, direct float64, better Better) Figure {
	return Figure{Workload: workload, Name: name, Unit: unit, Gateway: gw, Direct: direct, Better: better}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratioText(f Figure) string {
	r := f.Ratio()
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// WriteTable prints figures as an aligned text table.
func WriteTable(w io.Writer, figs []Figure) {
	rows := [][]string{{"workload", "figure", "zkcoord", "direct", "ratio", "target", ""}}
	for _, f := range figs {
		rows = append(rows, []string{f.Workload, f.Name, num(f.Gateway) + " " + f.Unit, direct(f), ratioText(f), f.Target, f.verdict()})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func direct(f Figure) string {
	if math.IsNaN(f.Direct) {
		return "-"
	}
	return num(f.Direct) + " " + f.Unit
}

// WriteMarkdown prints figures as a Markdown table.
func WriteMarkdown(w io.Writer, figs []Figure) {
	fmt.Fprintln(w, "| workload | figure | zkcoord | direct | ratio | target | |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|---|")
	for _, f := range figs {
		fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s | %s |\n", f.Workload, f.Name, num(f.Gateway), f.Unit, direct(f), ratioText(f), f.Target, f.verdict())
	}
}

// WriteJSON writes figures as JSON (NaN as null).
func WriteJSON(w io.Writer, figs []Figure) error {
	type jf struct {
		Figure
		Direct *float64 `json:"direct"`
		Ratio  *float64 `json:"ratio"`
	}
	out := make([]jf, 0, len(figs))
	for _, f := range figs {
		j := jf{Figure: f}
		if !math.IsNaN(f.Direct) {
			d, r := f.Direct, f.Ratio()
			j.Direct = &d
			if !math.IsNaN(r) {
				j.Ratio = &r
			}
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
