# syntax=docker/dockerfile:1
#
# Two images (see docker-compose.yml):
#   runtime (the default, production): payments-worker, payments-gateway, paymentsctl
#   sandbox: the same plus psp-simulator, for demos and staging without a real PSP
# The service picks its binary with `command:`; e.g.
#   docker run --rm payments-platform paymentsctl --help
#
# Build:  docker build -t payments-platform .                       (production)
#         docker build --target sandbox -t payments-sandbox .       (with the simulator)
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

# --- base of both images -------------------------------------------------------
FROM debian:bookworm-slim AS base

# ca-certificates: TLS to a real PSP, a managed Temporal or PostgreSQL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 payments \
 && useradd --system --uid 10001 --gid payments \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin payments

USER payments:payments
ENV RUST_LOG=info
# No ENTRYPOINT: `command:` in docker-compose.yml names the binary.
CMD ["paymentsctl", "--help"]

# --- sandbox: with the PSP simulator (never deployed with real money) ---------------
FROM base AS sandbox
COPY --from=builder /out/psp-simulator /out/payments-worker /out/payments-gateway /out/paymentsctl /usr/local/bin/
# gateway REST, gateway gRPC, PSP simulator
EXPOSE 8080 50051 8090

# --- runtime: production, the default target (last stage) --------------------------
FROM base AS runtime
COPY --from=builder /out/payments-worker /out/payments-gateway /out/paymentsctl /usr/local/bin/
# gateway REST, gateway gRPC
EXPOSE 8080 50051
