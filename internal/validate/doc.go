/*
Package validate checks zkcoord.v1 requests before they reach a handler.

It follows go-grpc-middleware's interceptors/validator, with the rules
written in Go (rules.go) instead of generated from proto annotations: names
are 1-128 characters of [A-Za-z0-9._:@=-] not starting with '.', lease IDs
are 32 lowercase hex characters, TTLs lie within [MinTTL, MaxTTL], values
and metadata stay within their size limits, and counts within their ranges.

A request that breaks a rule is refused with codes.InvalidArgument. The
status message names the first bad field, for example

	invalid RegisterRequest.group: must be 1-128 characters of [A-Za-z0-9._:@=-], not starting with '.'

and an errdetails.BadRequest detail lists every violation, each with the
proto field name ("group", `metadata["k"]`) and a description, so that a
client can fix all of them at once. Messages the package has no rules for
pass unchecked.

Install both interceptors so that unary calls and every message received on
a stream (server-streaming and bidirectional alike) are checked:

	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(validate.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(validate.StreamServerInterceptor()),
	)

The rules check shape only: whether a lease exists or a member is held by
another lease is for the handlers to say.
*/
package validate
