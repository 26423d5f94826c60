package auth

import (
	"context"

	"google.golang.org/grpc/credentials"
)

// bearerCreds sends a bearer token with every call.
type bearerCreds struct {
	token      string
	requireTLS bool
}

// Bearer returns per-call credentials that send token as
// "authorization: Bearer <token>". With requireTLS, gRPC refuses to send it
// over a connection without transport security; without it the token
// crosses the network in clear (for loopback and tests).
func Bearer(token string, requireTLS bool) credentials.PerRPCCredentials {
	return bearerCreds{token: token, requireTLS: requireTLS}
}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerCreds) RequireTransportSecurity() bool { return b.requireTLS }
