#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are installed, for the browser
# tests in testkit (testkit/src/browser.rs). Idempotent: when both binaries are present it only
# prints their versions. Otherwise installs Debian's `chromium` and `chromium-driver` packages
# with apt-get (as root, or through sudo).
#
#   scripts/ensure-browser.sh
#
# PAYMENTS_TEST_CHROMIUM / PAYMENTS_TEST_CHROMEDRIVER point the tests at other binaries; when
# set, those are checked instead, and nothing is installed for them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CHROMIUM="${PAYMENTS_TEST_CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="${PAYMENTS_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}"

for var in PAYMENTS_TEST_CHROMIUM PAYMENTS_TEST_CHROMEDRIVER; do
    if [ -n "${!var:-}" ] && [ ! -x "${!var}" ]; then
        die "$var=${!var} is not an executable file"
    fi
done

if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    command -v apt-get >/dev/null ||
        die "$CHROMIUM or $CHROMEDRIVER is missing and apt-get is not available; install Chromium and chromedriver and set PAYMENTS_TEST_CHROMIUM / PAYMENTS_TEST_CHROMEDRIVER"
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null ||
            die "$CHROMIUM or $CHROMEDRIVER is missing; installing them needs root (or sudo): apt-get install chromium chromium-driver"
        sudo=(sudo -n)
    fi
    apt_log=$(mktemp "${TMPDIR:-/tmp}/payments-ensure-browser.XXXXXX.log")
    log "installing chromium chromium-driver with apt-get (log: $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300 >"$apt_log" 2>&1; then
        tail -n 20 "$apt_log" >&2
        die "apt-get update failed; see $apt_log"
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends \
        chromium chromium-driver >>"$apt_log" 2>&1; then
        tail -n 20 "$apt_log" >&2
        die "apt-get install chromium chromium-driver failed; see $apt_log"
    fi
    rm -f "$apt_log"
    [ -x "$CHROMIUM" ] || die "$CHROMIUM is still missing after installing chromium"
    [ -x "$CHROMEDRIVER" ] || die "$CHROMEDRIVER is still missing after installing chromium-driver"
fi

chromium_version=$("$CHROMIUM" --version 2>/dev/null) || die "$CHROMIUM --version failed"
driver_version=$("$CHROMEDRIVER" --version 2>/dev/null) || die "$CHROMEDRIVER --version failed"
log "$chromium_version ($CHROMIUM)"
log "$driver_version ($CHROMEDRIVER)"
# chromedriver refuses a Chromium of another major version ("session not created").
[[ $chromium_version =~ ([0-9]+)\. ]] && chromium_major=${BASH_REMATCH[1]}
[[ $driver_version =~ ([0-9]+)\. ]] && driver_major=${BASH_REMATCH[1]}
[ "${chromium_major:-x}" = "${driver_major:-y}" ] ||
    die "Chromium and chromedriver major versions differ (${chromium_major:-?} vs ${driver_major:-?}); install matching versions"
