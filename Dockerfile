# tenant-gateway container image.
#   docker build -t tenant-gateway .
#   docker run -p 8080:8080 -p 8443:8443 -p 9090:9090 \
#     -e TENANT_GATEWAY_ADMIN_TOKEN=change-me-to-a-long-random-string tenant-gateway
# The config is read from /etc/tenant-gateway/gateway.yaml (mount your own over
# it); the embedded store lives in /var/lib/tenant-gateway.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > benches/routing.rs \
 && cargo build --release --locked --bin tenant-gateway \
 && rm -rf src benches
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin tenant-gateway \
 && strip target/release/tenant-gateway

FROM debian:bookworm-slim
# ca-certificates: the ACME CA's API; curl: the HEALTHCHECK. Debian stable's
# versions, updated with the base image (not pinned).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tenant-gateway --create-home gateway
COPY --from=build /src/target/release/tenant-gateway /usr/local/bin/tenant-gateway
COPY deploy/gateway.yaml /etc/tenant-gateway/gateway.yaml
USER 10001:10001
WORKDIR /var/lib/tenant-gateway
EXPOSE 8080 8443 9090
ENV TENANT_GATEWAY_CONFIG=/etc/tenant-gateway/gateway.yaml
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/local/bin/tenant-gateway"]
CMD ["serve"]
