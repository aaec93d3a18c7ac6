#!/usr/bin/env bash
# Runs the whole system locally and pushes a demo checkout with two sellers through it:
# Temporal dev server (durable SQLite file, WAL) + UI, PSP simulator, worker, gateway.
# Everything stays up until Ctrl-C (or exits after the demo with --exit).
#
#   scripts/run.sh          # demo, then keep running: open the Temporal UI, call the APIs
#   scripts/run.sh --exit   # demo, then stop everything (exit code = demo result)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
RUN_DIR="${RUN_DIR:-.run}"
case "$RUN_DIR" in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac
mkdir -p "$RUN_DIR/logs"

ensure_temporal_cli
log "building (debug; target dir $CARGO_TARGET_DIR)"
cargo build --locked --bins -q
bin="$CARGO_TARGET_DIR/debug"

pids=()
cleanup() {
    log "stopping"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM

export TEMPORAL_ADDRESS="http://127.0.0.1:$TEMPORAL_PORT"
export DATABASE_URL="${DATABASE_URL:-sqlite://$RUN_DIR/payments.db?mode=rwc}"
export PSP_BASE_URL="${PSP_BASE_URL:-http://127.0.0.1:8090}"
# stripe (default): the direct demo; toss: also serves the hosted payment page flow.
# The key sealing payment tokens at rest: one per local installation, kept with its database
# (a new key could not open the tokens already stored).
if [ -z "${PAYMENT_TOKEN_KEYS:-}" ]; then
    [ -s "$RUN_DIR/payment_token_key" ] || python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())' >"$RUN_DIR/payment_token_key"
    PAYMENT_TOKEN_KEYS=$(cat "$RUN_DIR/payment_token_key")
fi
export PAYMENT_TOKEN_KEYS
export PSP_PROVIDER="${PSP_PROVIDER:-stripe}"
if [ "$PSP_PROVIDER" = toss ]; then export PSP_SECRET_KEY="${PSP_SECRET_KEY:-test_sk_local}"; fi
# The simulator's webhooks go to the gateway's bridge (signatures with the test secrets).
export PSP_SIM_STRIPE_WEBHOOK_URL="http://127.0.0.1:8080/webhooks/stripe"
export PSP_SIM_TOSS_WEBHOOK_URL="http://127.0.0.1:8080/webhooks/toss"
export TEMPORAL_UI_URL="http://127.0.0.1:$TEMPORAL_UI_PORT"
# Pay-out for the demo: captures payable at once, a paid payout settles after 10 s (production
# defaults: 7 days each; see the README's pay-out section).
export PAYOUT_DELAY_DAYS="${PAYOUT_DELAY_DAYS:-0}"
export PAYOUT_RETURN_WINDOW_SECS="${PAYOUT_RETURN_WINDOW_SECS:-10}"
export PAYOUT_STATUS_CHECK_SECS="${PAYOUT_STATUS_CHECK_SECS:-30}"

log "Temporal dev server on :$TEMPORAL_PORT, UI on :$TEMPORAL_UI_PORT"
start_temporal "$RUN_DIR/temporal.db" "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$RUN_DIR/logs/temporal.log"
pids+=("$TEMPORAL_PID")

for port in 8090 8080 50051; do port_free "$port" || die "port $port is taken; stop what uses it"; done
"$bin/psp-simulator" >"$RUN_DIR/logs/psp-simulator.log" 2>&1 & pids+=($!)
"$bin/payments-worker" >"$RUN_DIR/logs/worker.log" 2>&1 & pids+=($!)
"$bin/payments-gateway" >"$RUN_DIR/logs/gateway.log" 2>&1 & pids+=($!)
wait_for_http http://127.0.0.1:8090/healthz 30 || die "simulator did not start; see $RUN_DIR/logs/psp-simulator.log"
wait_for_http http://127.0.0.1:8080/healthz 60 || die "gateway did not start; see $RUN_DIR/logs/gateway.log"

# API keys: every call below (and yours) sends one; kept in $RUN_DIR/api_keys.env.
ensure_local_keys "$bin" "$RUN_DIR/api_keys.env"

status=0
# The platform's fee (set once per installation) and the demo sellers' payout destinations
# (registering again only refreshes them).
"$bin/paymentsctl" fees list | grep -q '"USD"' || "$bin/paymentsctl" fees set --currency USD --bps 290 --fixed 0.30 >/dev/null
"$bin/paymentsctl" fees list | grep -q '"KRW"' || "$bin/paymentsctl" fees set --currency KRW --bps 300 >/dev/null
"$bin/paymentsctl" seller register seller-alice --provider stripe_connect --name "Alice's Shop" \
    --email alice@example.com --country US --bank-code 110000000 --account-number 000123456789 \
    --holder-name "Alice Kim" >/dev/null || status=$?
"$bin/paymentsctl" seller register seller-bob --provider toss_payouts --name "Bob's Shop" \
    --email bob@example.com --country KR --bank-code 088 --account-number 110123456789 \
    --holder-name "Bob Lee" >/dev/null || status=$?
if [ "$PSP_PROVIDER" = toss ]; then
    log "hosted checkout (pay it in a browser)"
    "$bin/paymentsctl" demo --hosted || status=$?
else
    log "demo checkout"
    "$bin/paymentsctl" demo || status=$?
fi
if [ "$PSP_PROVIDER" != toss ]; then
    # Each seller is paid what the demo sold, less the platform's fee (a period of its own per
    # run; a real deployment pays by the schedule, PAYOUT_SCHEDULE).
    log "payout to each demo seller"
    "$bin/paymentsctl" payout run --period "demo-$(date +%s)" --wait-secs 90 || status=$?
    "$bin/paymentsctl" balance show seller-alice || status=$?
fi
"$bin/paymentsctl" verify || status=$?
# Reconciliation of today's settlement report so far (the nightly schedule runs each PSP's
# previous day; a day run early is run again then, and its breaks heal or stay).
if [ "$PSP_PROVIDER" = toss ]; then recon_day=$(TZ=Asia/Seoul date +%F); else recon_day=$(date -u +%F); fi
log "reconciliation of $PSP_PROVIDER's $recon_day"
"$bin/paymentsctl" recon run --psp "$PSP_PROVIDER" --date "$recon_day" || status=$?

cat >&2 <<MSG

  Temporal UI      $TEMPORAL_UI_URL   (workflows: checkout-<checkout_id>)
  REST gateway     http://127.0.0.1:8080   (POST /v1/payments, GET /v1/payments/{id}, GET /v1/checkouts/{id})
  gRPC gateway     127.0.0.1:50051   (payments.v1.PaymentService; reflection on)
  PSP simulator    http://127.0.0.1:8090   (GET /_sim/captures, GET /_sim/payouts)
  payouts          paymentsctl payout list | balance show <seller> | payout run
  reconciliation   paymentsctl recon run --psp $PSP_PROVIDER --date $recon_day | recon breaks | recon report
  logs             $RUN_DIR/logs/

  API keys (also in $RUN_DIR/api_keys.env; \`source\` it for paymentsctl):
    payments scope  PAYMENTS_API_KEY=$PAYMENTS_API_KEY
    admin scope     PAYMENTS_ADMIN_KEY=$PAYMENTS_ADMIN_KEY
  e.g. curl -H "Authorization: Bearer \$PAYMENTS_API_KEY" http://127.0.0.1:8080/v1/checkouts/<id>

MSG
if [ "${1:-}" = "--exit" ]; then exit "$status"; fi
log "running; Ctrl-C stops everything"
wait
