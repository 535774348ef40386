#!/usr/bin/env bash
# Prepares a fresh Debian machine (as root) for copa-host's build and tests: the system
# packages, the wasm32-wasip2 Rust target, a running Docker daemon, and the fixture images.
# Idempotent: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io debootstrap skopeo docker-registry ca-certificates rpm sqlite3 db5.3-util
  mono-mcs python3 python3-pip golang-1.19-go golang-1.21-go golang-1.22-go git apache2-utils openssl)
# Go 1.21 and 1.22 are in bookworm-backports (the Go tests build their fixtures with them).
backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [[ ! -f $backports ]] && grep -qs bookworm /etc/os-release; then
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$backports"
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  nohup dockerd >/var/log/copa-host-dockerd.log 2>&1 &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/copa-host-dockerd.log" >&2; exit 1; }
fi

bash tests/fixtures/build.sh
