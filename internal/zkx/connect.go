package zkx

import (
	"fmt"
	"net"
	"path"
	"strings"
)

// ParseConnect splits a ZooKeeper connect string ("h1:2181,h2:2181/app") into
// its servers and its chroot. Hosts without a port get 2181.
func ParseConnect(connect string) (servers []string, chroot string, err error) {
	hosts := connect
	if i := strings.IndexByte(connect, '/'); i >= 0 {
		hosts, chroot = connect[:i], connect[i:]
		if chroot == "/" {
			chroot = ""
		} else if path.Clean(chroot) != chroot {
			return nil, "", fmt.Errorf("zkx: bad chroot %q in connect string", chroot)
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "2181")
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("zkx: connect string %q names no server", connect)
	}
	return servers, chroot, nil
}
