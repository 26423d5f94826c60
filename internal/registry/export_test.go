package registry

// WithAfterMemberRead calls fn after each member read while a group cache
// loads or rereads its group, with the number of members read so far:
// tests change the group in the middle of such a read.
func WithAfterMemberRead(fn func(group string, n int)) Option {
	return func(o *options) error {
		o.afterMemberRead = fn
		return nil
	}
}
