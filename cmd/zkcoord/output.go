package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// printer writes a command's answers: a table for people, or with -o json
// one protojson document per line for scripts.
type printer struct {
	out  io.Writer
	json bool
}

func (g *globals) printer(cmd *cobra.Command) printer {
	return printer{out: cmd.OutOrStdout(), json: g.output == "json"}
}

// print writes m as JSON, or as the table that table writes.
func (p printer) print(m proto.Message, table func(w io.Writer)) error {
	if p.json {
		return p.printJSON(m)
	}
	tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// printJSON writes m on one line. protojson's spacing varies from build to
// build on purpose; compacting it makes the output stable for scripts.
func (p printer) printJSON(m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
}

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
		if s[i] == "" {
			s[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

// ts formats a timestamp for people: UTC, to the second.
func ts(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// dur formats a duration for people.
func dur(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return d.AsDuration().String()
}

// kv formats a map as k=v,k=v in key order.
func kv(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

// rpcErr turns a gateway's status into "Code: message".
func rpcErr(err error) error {
	if st, ok := status.FromError(err); ok && err != nil {
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	return err
}

// progress writes a progress line for people on stderr.
func progress(cmd *cobra.Command, format string, a ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), "zkcoord: "+format+"\n", a...)
}
