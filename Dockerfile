# syntax=docker/dockerfile:1
#
# One image with every Anteroom binary: `signaling`, `relay` and `bench`
# (docker-compose.yml picks one per service with `command:`).
#
#   docker build -t anteroom .
#   docker run --rm anteroom signaling --help
#
# Build stage: the workspace's locked dependencies, production profile (release
# with LTO: the relay forwards 10-15 % more packets per core). The
# cache mounts keep the cargo registry and target/ between builds (BuildKit).
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
# aws-lc-sys (TLS and DTLS crypto) builds C code; cmake and clang cover the
# targets where its pre-generated build does not apply.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile production --locked -p signaling -p relay -p bench \
 && install -D -m 0755 -t /out \
      target/production/signaling target/production/relay target/production/bench

# Runtime stage: Debian slim, the three binaries, curl for health checks,
# and an unprivileged user. Nothing is written to disk by the services
# (patient data lives in memory only); the root filesystem may be read-only.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 anteroom \
 && useradd --system --uid 10001 --gid anteroom --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin anteroom
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
# signaling: HTTP/WebSocket; relay: metrics/health. Relays also use one UDP
# port per worker (--udp-port-base), published per service.
EXPOSE 8080 9100
CMD ["signaling", "--help"]
