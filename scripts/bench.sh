#!/usr/bin/env bash
# Benchmark: N checkouts (2 orders each) posted concurrently through REST against the whole
# stack, release build, Temporal dev server on a fresh file database in WAL mode. Prints
# checkouts/s and latency (POST to every order SUCCESS) p50/p90/p99.
#
#   scripts/bench.sh [checkouts=600] [concurrency=48]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CHECKOUTS="${1:-600}"
CONCURRENCY="${2:-48}"
TEMPORAL_PORT="${TEMPORAL_PORT:-7243}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8243}"
SIM_PORT="${SIM_PORT:-8190}" REST_PORT="${REST_PORT:-8180}" GRPC_PORT="${GRPC_PORT:-50151}"

ensure_temporal_cli
log "building (release)"
cargo build --locked --release --bins -q
bin="$CARGO_TARGET_DIR/release"

dir=$(mktemp -d /tmp/payments-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 130" INT TERM

start_temporal "$dir/temporal.db" "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$dir/temporal.log"
pids+=("$TEMPORAL_PID")
export TEMPORAL_ADDRESS="http://127.0.0.1:$TEMPORAL_PORT"
export DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$dir/payments.db?mode=rwc}"
export PSP_BASE_URL="http://127.0.0.1:$SIM_PORT" PSP_SIM_LISTEN="127.0.0.1:$SIM_PORT"
export GATEWAY_REST_LISTEN="127.0.0.1:$REST_PORT" GATEWAY_GRPC_LISTEN="127.0.0.1:$GRPC_PORT"
# One client, one key, hundreds of requests a second: the rate limits are off (the benchmark
# measures the platform, not the limiter).
export RATE_LIMIT_PER_KEY=0 RATE_LIMIT_PER_IP=0
export PAYMENTS_GATEWAY_URL="http://127.0.0.1:$REST_PORT" PAYMENTS_GATEWAY_GRPC="http://127.0.0.1:$GRPC_PORT" RUST_LOG="${RUST_LOG:-warn}"

"$bin/psp-simulator" >"$dir/sim.log" 2>&1 & pids+=($!)
"$bin/payments-worker" >"$dir/worker.log" 2>&1 & pids+=($!)
"$bin/payments-gateway" >"$dir/gateway.log" 2>&1 & pids+=($!)
wait_for_http "http://127.0.0.1:$REST_PORT/healthz" 60 || die "gateway did not start; see $dir/gateway.log"

ensure_local_keys "$bin" "$dir/api_keys.env"
log "database: ${DATABASE_URL%%\?*}; $CHECKOUTS checkouts x 2 orders, concurrency $CONCURRENCY"
"$bin/paymentsctl" bench --checkouts "$CHECKOUTS" --concurrency "$CONCURRENCY" --orders-per-checkout 2
"$bin/paymentsctl" verify
