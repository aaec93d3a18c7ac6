# syntax=docker/dockerfile:1
#
# One image for every service of the payments platform (see docker-compose.yml):
#   psp-simulator, payments-worker, payments-gateway, paymentsctl
# The service picks its binary with `command:`; e.g.
#   docker run --rm payments-platform paymentsctl --help
#
# Build:  docker build -t payments-platform .
# Needs Cargo.lock committed (the build is --locked, so images are reproducible).

# Same toolchain line as the development machines and CI; at least the
# workspace's rust-version (1.88).
ARG RUST_VERSION=1.95

# --- build -------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

WORKDIR /src
# SQLX_OFFLINE: sqlx compile-time checked queries, if any, use the committed
# .sqlx/ data instead of a live database.
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true

COPY . .

# The registry, git checkouts and target/ live in BuildKit cache mounts so a
# rebuild only recompiles what changed; the binaries are copied out of the
# cached target/ because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --workspace --bins \
 && mkdir -p /out \
 && for bin in psp-simulator payments-worker payments-gateway paymentsctl; do \
        cp "target/release/${bin}" /out/ ; \
    done

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to a real PSP, a managed Temporal or PostgreSQL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 payments \
 && useradd --system --uid 10001 --gid payments \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin payments

COPY --from=builder /out/ /usr/local/bin/

USER payments:payments
ENV RUST_LOG=info

# gateway REST, gateway gRPC, PSP simulator
EXPOSE 8080 50051 8090

# No ENTRYPOINT: `command:` in docker-compose.yml names the binary.
CMD ["paymentsctl", "--help"]
