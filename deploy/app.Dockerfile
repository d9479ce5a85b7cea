# The sample app for docker-compose: the echo backend from examples/, which
# answers every request with the headers the gateway sent (X-Tenant-*).
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --example echo_backend

FROM debian:bookworm-slim
COPY --from=build /src/target/release/examples/echo_backend /usr/local/bin/echo_backend
USER 10001:10001
EXPOSE 8000
CMD ["echo_backend", "--listen", "0.0.0.0:8000"]
