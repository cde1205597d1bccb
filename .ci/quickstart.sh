#!/usr/bin/env bash
# Checks the README's quickstart as a new user would meet it: clone into an
# empty directory, run the documented run command with no database
# configured, send an event with the documented command, and see the
# notification arrive over gRPC (grpcurl).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$(go env GOPATH)/bin:$PATH"
command -v grpcurl >/dev/null || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
unset HOOKD_DATABASE_URL HOOKD_STRIPE_WEBHOOK_SECRET

work=$(mktemp -d)
pid=""
cleanup() {
  # go run does not pass signals on to hookd: stop the whole process group.
  if [ -n "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do # hookd drains, then frees its ports
      (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
git clone -q "$repo" "$work/hookd"
cd "$work/hookd"
for port in 8080 9090; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is taken: the quickstart uses hookd's default ports" >&2; exit 1
  fi
done

# README, "Run it": go run ./cmd/hookd
go build -o /dev/null ./cmd/hookd # compile first, so the wait below is hookd's own
setsid go run ./cmd/hookd > run.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat run.log; echo "hookd exited" >&2; exit 1; }
  sleep 0.2
done
curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || { cat run.log; echo "hookd never became ready" >&2; exit 1; }
cat run.log
grep -q "hookd send" run.log || { echo "the start banner does not show a send command" >&2; exit 1; }

# README, "Send a first event"
go run ./cmd/hookd send --type customer.created --customer cus_123

# README, "Watch notifications"
out=$(grpcurl -plaintext -max-time 5 -d '{"customer_id":"cus_123"}' 127.0.0.1:9090 hookd.v1.NotificationService/Subscribe || true)
echo "$out"
grep -q '"kind": "customer.created"' <<<"$out" || { echo "no customer.created notification arrived" >&2; exit 1; }
[ -s hookd-data/hookd.db ] || { echo "no embedded store in ./hookd-data" >&2; exit 1; }
echo "quickstart works"
