#!/usr/bin/env bash
# Runs every test: unit, property, store (SQLite, and PostgreSQL when configured), end-to-end
# against a real Temporal dev server, the crash-recovery test, and the docker-compose check.
#
#   scripts/test.sh                        # SQLite always; PostgreSQL if PAYMENTS_TEST_POSTGRES_URL is set
#   PAYMENTS_REQUIRE_POSTGRES=1 scripts/test.sh   # PostgreSQL mandatory (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_temporal_cli
# Headless Chromium + chromedriver for the hosted-page browser tests (Debian packages).
bash scripts/ensure-browser.sh

if [ "${PAYMENTS_REQUIRE_POSTGRES:-0}" = 1 ] && [ -z "${PAYMENTS_TEST_POSTGRES_URL:-}" ]; then
    export PAYMENTS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
if [ -n "${PAYMENTS_TEST_POSTGRES_URL:-}" ]; then
    ensure_postgres "$PAYMENTS_TEST_POSTGRES_URL"
    # Databases left by earlier runs (each test creates its own).
    psql "$PAYMENTS_TEST_POSTGRES_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'payments_test_%'" |
        while read -r db; do
            # One still in use (another test run on this machine) is left for a later run.
            [ -n "$db" ] && { psql "$PAYMENTS_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 ||
                log "left $db: in use"; }
        done
    log "PostgreSQL tests: on"
else
    log "PostgreSQL tests: off (set PAYMENTS_TEST_POSTGRES_URL to run them)"
fi

# One in-memory Temporal dev server for the whole run; every test uses its own task queue and
# unique workflow ids. (Without it, each test binary would start its own.) Tests that stand in
# for namespace retention delete closed workflows; by default the server holds a deletion until
# the visibility store has processed the workflow's close, which under a full test run's load
# took longer than a minute and a half: deletion here does not wait for it (describe reads the
# execution itself, so the tests' waits stay exact).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
temporal server start-dev --headless --ip 127.0.0.1 --port "$port" --log-level error $TEMPORAL_SEARCH_ATTRIBUTES \
    --dynamic-config-value history.transferProcessorEnsureCloseBeforeDelete=false \
    >/tmp/payments-test-temporal.log 2>&1 &
temporal_pid=$!
trap 'kill $temporal_pid 2>/dev/null; wait $temporal_pid 2>/dev/null || true' EXIT
wait_for_port 127.0.0.1 "$port" 60 || die "Temporal dev server did not start; see /tmp/payments-test-temporal.log"
export PAYMENTS_TEST_TEMPORAL_ADDRESS="http://127.0.0.1:$port"

log "docker-compose.yml"
bash scripts/check-compose.sh

log "cargo test (target dir $CARGO_TARGET_DIR)"
out=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test run with nothing in it).
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$out"
rm -f "$out"
exit "$status"
