package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zkcoord/zkcoord/internal/dnsview"
)

// parseDNS checks the dns flags into c.dns, whether or not --dns-listen is
// set: a bad value is an error at start either way.
func parseDNS(c *config) error {
	var groups []string
	for _, g := range strings.Split(c.dnsGroups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		if c.dnsListen != "" {
			return errors.New("--dns-listen needs --dns-groups: the prefixes of the groups DNS may show, or * for all (DNS carries no credentials)")
		}
		groups = []string{dnsview.AllGroups} // checked, unused
	}
	flags := []string{"--dns-domain", "--dns-ttl", "--dns-groups"}
	c.dns = []dnsview.Option{dnsview.WithDomain(c.dnsDomain), dnsview.WithTTL(c.dnsTTL), dnsview.WithGroups(groups...)}
	for i, opt := range c.dns {
		if err := dnsview.Check(dnsview.WithGroups(dnsview.AllGroups), opt); err != nil {
			return fmt.Errorf("%s: %w", flags[i], err)
		}
	}
	return nil
}
