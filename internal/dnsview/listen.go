package dnsview

import (
	"errors"
	"net"
	"syscall"
)

// Listen listens on addr over UDP and TCP, on the same port, for Serve.
// With port 0, UDP picks a free port and TCP takes the same one; when
// that port is taken for TCP, Listen tries another (a few times).
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || try == 9 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}
