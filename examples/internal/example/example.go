// Package example holds the little the Go examples share: where the
// gateway is (-addr), and how a failure ends an example. Everything an
// example teaches about zkcoord stays in its own main.go.
package example

import (
	"flag"
	"log"
	"os"
)

// AddrFlag defines the -addr flag: the gateway's gRPC address, from the
// environment variable ZKCOORD_ADDR when it is set (default
// localhost:7070, where `make run` serves).
func AddrFlag() *string {
	def := "localhost:7070"
	if v := os.Getenv("ZKCOORD_ADDR"); v != "" {
		def = v
	}
	return flag.String("addr", def, "gateway address (env ZKCOORD_ADDR)")
}

// Check ends the example with err's message when err is not nil.
func Check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
