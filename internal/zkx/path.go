package zkx

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// CheckName reports whether name can be one znode's name: not empty, not
// "." or "..", no "/", and none of the characters ZooKeeper refuses in a
// path (NUL and the other control characters).
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty znode name")
	case name == "." || name == "..":
		return fmt.Errorf("znode name %q is reserved", name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("znode name %q contains /", name)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("znode name %q contains the control character %U", name, r)
		}
	}
	return nil
}

// CheckPath reports whether p is a znode path below "/" that zkcoord can
// root a namespace at: absolute, clean (no trailing "/", no empty, "." or
// ".." parts) and made of valid names (CheckName).
func CheckPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("znode path %q: want an absolute, clean path below /", p)
	}
	for _, name := range strings.Split(p[1:], "/") {
		if err := CheckName(name); err != nil {
			return fmt.Errorf("znode path %q: %w", p, err)
		}
	}
	return nil
}
