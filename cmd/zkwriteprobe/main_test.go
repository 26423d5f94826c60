//go:build linux

package main

import (
	"slices"
	"testing"
)

// A flushed request: its log write, the write's end, the flush's end, then
// the selector wake-up (8 bytes), which must not count as the log write;
// an unflushed one, whose window opens on a late wake-up, ends at its
// write's end. A request with no log write
// inside is left out.
func TestSplit(t *testing.T) {
	out := []byte(`
  SyncThread:0 10.000000100: syscalls:sys_enter_write: fd: 0x00000019, buf: 0x7f6cc094d700, count: 0x00000057
  SyncThread:0 10.000000110: syscalls:sys_exit_write: 0x57
  NIOWorkerThread 10.000000115: syscalls:sys_enter_write: fd: 0x0000001a, buf: 0x7f6c48008ad0, count: 0x00000058
  SyncThread:0 10.000000500: syscalls:sys_exit_fdatasync: 0x0
  SyncThread:0 10.000000510: syscalls:sys_enter_write: fd: 0x00000015, buf: 0x7f6cc094ee98, count: 0x00000008
  SyncThread:0 10.000000520: syscalls:sys_exit_write: 0x8
  SyncThread:0 10.000001050: syscalls:sys_enter_write: fd: 0x00000015, buf: 0x7f6cc094ee98, count: 0x00000008
  SyncThread:0 10.000001052: syscalls:sys_exit_write: 0x8
  SyncThread:0 10.000001200: syscalls:sys_enter_write: fd: 0x00000019, buf: 0x7f6cc094d700, count: 0x00000057
  SyncThread:0 10.000001203: syscalls:sys_exit_write: 0x57
  SyncThread:0 10.000001210: syscalls:sys_enter_write: fd: 0x00000015, buf: 0x7f6cc094ee98, count: 0x00000008
  SyncThread:0 10.000001215: syscalls:sys_exit_write: 0x8
`)
	evs, err := parseEvents(out)
	if err != nil {
		t.Fatal(err)
	}
	const base = 10_000_000_000
	ops := []span{
		{base + 0, base + 700},     // flushed
		{base + 1000, base + 1400}, // not flushed
		{base + 2000, base + 2100}, // nothing traced inside
	}
	s := split(ops, evs)
	want := parts{
		before: []int64{100, 200},
		log:    []int64{400, 3},
		after:  []int64{200, 197},
		whole:  []int64{700, 400},
	}
	for _, c := range []struct {
		name      string
		got, want []int64
	}{
		{"before", s.before, want.before}, {"log", s.log, want.log},
		{"after", s.after, want.after}, {"whole", s.whole, want.whole},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseTimeRefusesMicroseconds(t *testing.T) {
	if _, err := parseTime("8233.198397:"); err == nil {
		t.Fatal("a timestamp without nanoseconds was accepted")
	}
	if got, err := parseTime("8233.198397939:"); err != nil || got != 8233198397939 {
		t.Fatalf("parseTime = %d, %v", got, err)
	}
}
