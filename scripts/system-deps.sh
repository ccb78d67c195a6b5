#!/usr/bin/env bash
# Debian packages Rigi uses beyond Python: speech (espeak-ng, aplay), ticket fonts (DejaVu),
# audio checks (sox), headless Chromium for the page tests, nginx for the proxy tests, a
# redis-server the Redis tests and the benchmark start of their own, and pg_isready (.ci/run's
# PostgreSQL check). Installs only what is missing.
set -euo pipefail
packages=()
command -v espeak-ng >/dev/null || packages+=(espeak-ng)
command -v aplay >/dev/null || packages+=(alsa-utils)
command -v sox >/dev/null || packages+=(sox)
command -v chromium >/dev/null || packages+=(chromium)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v pg_isready >/dev/null || packages+=(postgresql-client)
# nginx in front of the server in the proxy tests (Debian's package; the tests start their own
# on free ports, so the distribution's service need not run).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || packages+=(fonts-dejavu-core)
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${packages[*]} (run: sudo apt-get install ${packages[*]})" >&2
    exit 0
fi
echo "installing Debian packages: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
if [[ " ${packages[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
    # The tests run their own nginx on loopback; the distribution's one on port 80 stays off.
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
