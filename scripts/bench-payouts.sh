#!/usr/bin/env bash
# Pay-out benchmark (a measurement, not a test): a payout cycle over SELLERS sellers, each with
# one captured order, paid through Stripe Connect at the simulator; prints how fast every
# payout workflow is started and settled, and the balance query's rate and latency.
#
#   scripts/bench-payouts.sh [sellers] [concurrency]      # default 10000 16
#   BENCH_DATABASE_URL=postgres://... scripts/bench-payouts.sh 10000
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SELLERS="${1:-10000}"
CONCURRENCY="${2:-16}"
TEMPORAL_PORT="${TEMPORAL_PORT:-7253}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8253}"
SIM_PORT="${SIM_PORT:-8290}" REST_PORT="${REST_PORT:-8280}" GRPC_PORT="${GRPC_PORT:-50251}"

ensure_temporal_cli
log "building (release)"
cargo build --locked --release --bins -q
bin="$CARGO_TARGET_DIR/release"

dir=$(mktemp -d /tmp/payments-bench-payouts.XXXXXX)
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
export STRIPE_CONNECT_BASE_URL="$PSP_BASE_URL" TOSS_PAYOUTS_BASE_URL="$PSP_BASE_URL"
export PSP_SIM_STRIPE_WEBHOOK_URL="http://127.0.0.1:$REST_PORT/webhooks/stripe"
export PSP_SIM_TOSS_WEBHOOK_URL="http://127.0.0.1:$REST_PORT/webhooks/toss"
export GATEWAY_REST_LISTEN="127.0.0.1:$REST_PORT" GATEWAY_GRPC_LISTEN="127.0.0.1:$GRPC_PORT"
export RATE_LIMIT_PER_KEY=0 RATE_LIMIT_PER_IP=0 CONCURRENCY_MAX=4096
# Captures payable at once; a paid payout settles 1 s later; no schedule (run on demand).
export PAYOUT_DELAY_DAYS=0 PAYOUT_RETURN_WINDOW_SECS=1 PAYOUT_STATUS_CHECK_SECS=30 PAYOUT_SCHEDULE=off
export PAYMENTS_GATEWAY_URL="http://127.0.0.1:$REST_PORT" PAYMENTS_GATEWAY_GRPC="http://127.0.0.1:$GRPC_PORT" RUST_LOG="${RUST_LOG:-warn}"

"$bin/psp-simulator" >"$dir/sim.log" 2>&1 & pids+=($!)
"$bin/payments-worker" >"$dir/worker.log" 2>&1 & pids+=($!)
"$bin/payments-gateway" >"$dir/gateway.log" 2>&1 & pids+=($!)
wait_for_http "http://127.0.0.1:$REST_PORT/healthz" 60 || die "gateway did not start; see $dir/gateway.log"

ensure_local_keys "$bin" "$dir/api_keys.env"
log "database: ${DATABASE_URL%%\?*}; $SELLERS sellers, concurrency $CONCURRENCY"
"$bin/paymentsctl" bench-payouts --sellers "$SELLERS" --concurrency "$CONCURRENCY"
"$bin/paymentsctl" verify
