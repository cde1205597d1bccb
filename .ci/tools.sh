#!/usr/bin/env bash
# Installs the pinned code generators into $(go env GOPATH)/bin, if missing.
# Sourced by .ci/test; safe to run on its own.
set -euo pipefail
gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
want() { # want BINARY MODULE@VERSION: install unless that exact version is there
  local bin=$1 mod=$2
  if [ -x "$gobin/$bin" ] && go version -m "$gobin/$bin" 2>/dev/null | grep -q "${mod##*@}"; then
    return 0
  fi
  echo "installing $mod"
  go install "$mod"
}
want buf github.com/bufbuild/buf/cmd/buf@v1.75.0
want protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
want protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
want protoc-gen-go-grain github.com/asynkron/protoactor-go/protobuf/protoc-gen-go-grain@v0.0.0-20240822202345-3c0e61ca19c9
# stripe-mock serves the Stripe API on loopback for the tests that fetch
# objects (hookd's Stripe client against a real peer, not a hand-made fake).
want stripe-mock github.com/stripe/stripe-mock@v0.203.0
