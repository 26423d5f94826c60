# syntax=docker/dockerfile:1
# zkcoord container images.
#   docker build -t zkcoord .                 # `zkcoord serve` (needs a ZooKeeper ensemble)
#   docker build --target dev -t zkcoord:dev .  # also runs `zkcoord dev` (bundles ZooKeeper + JRE)
#
# Run:
#   docker run -p 7070:7070 -e ZKCOORD_ZK=zk1:2181,zk2:2181,zk3:2181 \
#     -e ZKCOORD_TLS_CERT=/tls/server.pem -e ZKCOORD_TLS_KEY=/tls/server-key.pem \
#     -e ZKCOORD_AUTH_POLICY=/tls/policy.json -v $PWD/tls:/tls:ro zkcoord
#   (or -e ZKCOORD_PLAINTEXT=true -e ZKCOORD_NO_AUTH=true on a network you trust)
#   docker run -p 7070:7070 zkcoord:dev dev --listen 0.0.0.0:7070
#   docker run --rm zkcoord get web --endpoints zc1:7070   # the operator commands (docs/CLI.md)

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/zkcoord ./cmd/zkcoord

FROM gcr.io/distroless/static-debian12:nonroot AS serve
COPY --from=build /out/zkcoord /usr/local/bin/zkcoord
EXPOSE 7070
ENV ZKCOORD_LISTEN=:7070
# grpc.health.v1 on the port of ZKCOORD_LISTEN (TLS with ZKCOORD_TLS_*):
# healthy while the replica has a ZooKeeper session and is not draining.
# No shell here: the binary is its own probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["/usr/local/bin/zkcoord", "health"]
ENTRYPOINT ["/usr/local/bin/zkcoord"]
CMD ["serve"]

FROM debian:bookworm-slim AS dev
RUN apt-get update \
 && apt-get install -y --no-install-recommends zookeeper default-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/zkcoord /usr/local/bin/zkcoord
RUN useradd --system --create-home zkcoord
USER zkcoord
EXPOSE 7070
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s CMD ["/usr/local/bin/zkcoord", "health", "--addr", "127.0.0.1:7070"]
ENTRYPOINT ["/usr/local/bin/zkcoord"]
CMD ["dev", "--listen", "0.0.0.0:7070"]

# The default target: the serving image.
FROM serve
