#!/usr/bin/env bash
# Makes a PostgreSQL reachable at $HOOKD_TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres): starts the local cluster when
# none answers, and installs PostgreSQL with apt-get when it is absent.
set -euo pipefail
host=127.0.0.1 port=5432
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
if command -v pg_isready >/dev/null && ready; then exit 0; fi

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing it with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  # A fresh cluster asks for passwords over TCP; the tests connect as
  # postgres without one, on loopback only.
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    $sudo sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  done
fi
ver=$(ls /etc/postgresql | sort -V | tail -n 1)
echo "starting PostgreSQL $ver"
$sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
# A cluster that apt-get already started must re-read pg_hba.conf.
$sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || true
for _ in $(seq 1 60); do
  ready && exit 0
  sleep 0.5
done
echo "PostgreSQL did not become ready on $host:$port" >&2
exit 1
