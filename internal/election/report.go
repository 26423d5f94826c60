package election

// update reports where a candidacy that is still there stands.
func (c *candidate) update(s standing) Update {
	if s.ahead == 0 {
		return Update{Status: Elected, Token: c.self.Token, Leader: c.self}
	}
	return Update{Status: Queued, Position: s.ahead, Leader: s.leader}
}

// ended is the last update of a candidacy whose znode is gone.
func (c *candidate) ended(led bool) Update {
	u := Update{Status: Lost, Candidate: c.name}
	if c.e.resigned.Has(c.path) {
		u.Status = Resigned
	}
	if led {
		u.Token = c.self.Token
	}
	c.e.log.Debug("election: candidacy ended", "election", c.election, "candidate", c.name, "status", u.Status.String())
	return u
}

// sameTerm reports whether a and b name the same leader (or both none).
func sameTerm(a, b *LeaderInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Candidate == b.Candidate && a.Token == b.Token
}

// sameLeader reports whether a and b name the same leader with the same
// value (or both none): what a report needs to say nothing new.
func sameLeader(a, b *LeaderInfo) bool {
	return sameTerm(a, b) && (a == nil || a.Value == b.Value)
}
