#!/usr/bin/env bash
# Install the real clients the tests drive (Debian packages). Safe to re-run:
# it installs only what is missing. Needs root (or sudo).
set -euo pipefail
# command -> Debian package
declare -A PKG=(
  [curl]=curl
  [slowhttptest]=slowhttptest
  [wrk]=wrk
  [h2load]=nghttp2-client
  [pgrep]=procps
  [ss]=iproute2
  [bc]=bc
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [gzip]=gzip
  [clang]=clang
  [llvm-strip]=llvm
  [hping3]=hping3
  [nft]=nftables
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [pebble]=pebble
  [systemd-analyze]=systemd
)
missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done
# GNU time (peak memory of a hunt over 1 GB); `time` alone is the shell's.
[ -x /usr/bin/time ] || missing+=(time)
# The XDP program's headers (levee-xdp's build.rs compiles it with clang).
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
if [ "${1:-}" = "--bench" ]; then
  for cmd in nginx haproxy taskset; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$([ $cmd = taskset ] && echo util-linux || ([ $cmd = nginx ] && echo nginx-light || echo $cmd))")
  done
fi
# CrowdSec's Local API (Debian's crowdsec), for the bouncer's tests: the
# package is unpacked, not installed, so that its setup (a service, a hub
# download, a Central API registration) never runs on this machine.
if ! command -v cscli >/dev/null 2>&1 && [ ! -x /opt/levee-test/crowdsec/usr/bin/cscli ]; then
  echo "Unpacking Debian's crowdsec into /opt/levee-test/crowdsec" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q crowdsec >/dev/null 2>&1) ||
    (apt-get update -qq >/dev/null && cd "$tmp" && apt-get download -q crowdsec >/dev/null 2>&1) ||
    { echo "cannot download the crowdsec package: run as root: apt-get update && apt-get download crowdsec" >&2; exit 1; }
  mkdir -p /opt/levee-test/crowdsec || { echo "cannot create /opt/levee-test: run this script as root" >&2; exit 1; }
  dpkg-deb -x "$tmp"/crowdsec_*.deb /opt/levee-test/crowdsec
  rm -rf "$tmp"
fi
# Pebble 2.6 from Debian 13 (trixie), for the ACME Renewal Information test
# (bookworm's 2.4 predates ARI): downloaded through apt with a temporary
# source list (signatures checked against debian-archive-keyring; the
# system's sources are not touched), unpacked into /opt/levee-test/pebble-ari.
if [ ! -x /opt/levee-test/pebble-ari/usr/bin/pebble ]; then
  echo "Unpacking Debian 13's pebble into /opt/levee-test/pebble-ari" >&2
  tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$tmp/trixie.list"
  apt_tmp=(-o "Dir::Etc::SourceList=$tmp/trixie.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives" -o Debug::NoLocking=1)
  if apt-get "${apt_tmp[@]}" update -qq >/dev/null 2>&1 && (cd "$tmp" && apt-get "${apt_tmp[@]}" download -q pebble >/dev/null 2>&1); then
    mkdir -p /opt/levee-test/pebble-ari
    dpkg-deb -x "$tmp"/pebble_*.deb /opt/levee-test/pebble-ari
  else
    echo "warning: cannot download Debian 13's pebble; the ARI test will be skipped" >&2
  fi
  rm -rf "$tmp"
fi
# OASIS's STIX 2.1 validator (PyPI), for `levee report --stix`.
if ! python3 -c "import stix2validator" >/dev/null 2>&1; then
  echo "Installing stix2-validator (pip)" >&2
  python3 -m pip install -q stix2-validator >&2 || { echo "pip install stix2-validator failed: install it by hand (python3 -m pip install stix2-validator)" >&2; exit 1; }
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "Missing test tools: ${missing[*]}. Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing test tools: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
