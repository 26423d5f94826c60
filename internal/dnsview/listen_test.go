package dnsview

import (
	"net"
	"testing"
)

// TestListen: port 0 gives UDP and TCP the same free port; a port whose
// TCP side is taken is an error when it was asked for by number.
func TestListen(t *testing.T) {
	for range 20 {
		pc, l, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if u, c := pc.LocalAddr().(*net.UDPAddr), l.Addr().(*net.TCPAddr); u.Port != c.Port || u.Port == 0 {
			t.Errorf("UDP on %v, TCP on %v: want one port", u, c)
		}
		pc.Close()
		l.Close()
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if pc, l, err := Listen(taken.Addr().String()); err == nil {
		pc.Close()
		l.Close()
		t.Errorf("Listen on %v, whose TCP port is taken: no error", taken.Addr())
	}
	if _, _, err := Listen("127.0.0.1"); err == nil {
		t.Error("Listen without a port: no error")
	}
}
