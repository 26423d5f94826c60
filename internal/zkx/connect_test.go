package zkx

import (
	"slices"
	"testing"
)

func TestParseConnect(t *testing.T) {
	for _, tc := range []struct {
		in      string
		servers []string
		chroot  string
		bad     bool
	}{
		{in: "127.0.0.1:2181", servers: []string{"127.0.0.1:2181"}},
		{in: "zk1,zk2:2182,zk3", servers: []string{"zk1:2181", "zk2:2182", "zk3:2181"}},
		{in: "zk1:2181,zk2:2181/apps/coord", servers: []string{"zk1:2181", "zk2:2181"}, chroot: "/apps/coord"},
		{in: "zk1:2181/", servers: []string{"zk1:2181"}},
		{in: " zk1:2181 , zk2:2181 ", servers: []string{"zk1:2181", "zk2:2181"}},
		{in: "[::1]:2181", servers: []string{"[::1]:2181"}},
		{in: "", bad: true},
		{in: "/chroot", bad: true},
		{in: "zk1:2181/a//b", bad: true},
		{in: "zk1:2181/a/", bad: true},
	} {
		servers, chroot, err := ParseConnect(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseConnect(%q) = %v, %q; want an error", tc.in, servers, chroot)
			}
			continue
		}
		if err != nil || !slices.Equal(servers, tc.servers) || chroot != tc.chroot {
			t.Errorf("ParseConnect(%q) = %v, %q, %v; want %v, %q", tc.in, servers, chroot, err, tc.servers, tc.chroot)
		}
	}
}
