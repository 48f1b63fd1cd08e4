# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in their own cached layer (cargo-chef), the runtime
# image holds only the binary, its default config and CA certificates, and runs as a non-root user.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# aws-lc-rs compiles its C core here; gcc from the rust image is all it needs. Only the service
# package: the simulator and the load generator (workspace members sim/ and bench/) never enter
# the image.
RUN cargo chef cook --release --locked -p alipay-notify --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p alipay-notify --bin alipay-notify

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin alipay \
    && mkdir -p /app/data \
    && chown alipay:alipay /app/data
WORKDIR /app
COPY --from=builder /app/target/release/alipay-notify /usr/local/bin/alipay-notify
COPY config ./config
USER alipay:alipay
# Configuration comes from the environment; see the README's table. Keys are best mounted as
# files (ALIPAY_APP_PRIVATE_KEY_FILE=/run/secrets/...), never baked into the image.
ENV LISTEN_ADDR=0.0.0.0:8000 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite:/app/data/alipay-notify.db
EXPOSE 8000
VOLUME ["/app/data"]
# Probes: GET /healthz (alive) and GET /readyz (database reachable).
ENTRYPOINT ["alipay-notify"]
CMD ["serve"]
