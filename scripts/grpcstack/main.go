// Command grpcstack measures what an idle server-streaming call costs a
// bare grpc-go server, with no interceptor and a handler that only waits:
// heap and stacks per stream after a GC, the clients in a process of
// their own (the program runs itself with -client). It is the floor under
// zkcoord's WatchGroup figure (docs/BENCHMARKS.md, "An idle WatchGroup
// stream's stack, measured where it grows").
//
//	go run ./scripts/grpcstack -n 2000          # the handler sends its header only
//	go run ./scripts/grpcstack -n 2000 -send    # the handler sends one message first
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	n       = flag.Int("n", 1000, "streams")
	send    = flag.Bool("send", false, "the handler sends one message before it waits (else its header only)")
	workers = flag.Int("workers", 0, "grpc.NumStreamWorkers (0: none)")
	client  = flag.String("client", "", "run as the clients of the server at this address")
)

// waiter's Watch answers and then waits for the client to go.
type waiter struct {
	healthpb.UnimplementedHealthServer
}

func (waiter) Watch(_ *healthpb.HealthCheckRequest, st healthpb.Health_WatchServer) error {
	var err error
	if *send {
		err = st.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	} else {
		err = st.SendHeader(nil)
	}
	if err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

func main() {
	flag.Parse()
	if *client != "" {
		if err := runClients(*client); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// memory returns the heap and stacks in use after two GCs.
func memory() (heap, stacks uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
}

func run() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if *workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(*workers)))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, waiter{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	defer func() { s.Stop(); <-served }()

	h0, s0, g0 := memory()
	args := []string{"-client", lis.Addr().String(), fmt.Sprint("-n=", *n), fmt.Sprint("-send=", *send)}
	cmd := exec.Command(os.Args[0], args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { in.Close(); _ = cmd.Wait() }() // the clients exit when their stdin closes
	// Clients that cannot open their streams within a minute are killed,
	// which ends the read below.
	kill := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer kill.Stop()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "open\n" {
		return fmt.Errorf("clients: %q, %v", line, err)
	}
	h1, s1, g1 := memory()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(*n) / 1024 }
	fmt.Printf("per idle stream: heap %.2f KiB, stacks %.2f KiB, goroutines %.2f\n",
		per(h0, h1), per(s0, s1), float64(g1-g0)/float64(*n))
	return nil
}

// runClients opens n streams, waits for each one's header (and message),
// says "open", and holds them until stdin closes.
func runClients(addr string) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := healthpb.NewHealthClient(cc)
	errs := make(chan error, *n)
	var wg sync.WaitGroup
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = st.Header()
			}
			if err == nil && *send {
				_, err = st.Recv()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Println("open")
	_, _ = os.Stdin.Read(make([]byte, 1))
	return nil
}
