#!/usr/bin/env bash
# Validates deploy/ (Dockerfile, compose.yaml, k8s/) on a machine without a
# Docker engine or a Kubernetes cluster. Needs Go and the Go module proxy;
# nothing else is downloaded. Idempotent: tools are installed once into
# $(go env GOPATH)/bin, generated schemas are cached under
# ${XDG_CACHE_HOME:-~/.cache}/hookd-deploy-check.
#
#   bash .ci/deploy-check.sh
#
# What runs, and with what:
#   Dockerfile   deploy/validate dockerfile (go.mod ↔ golang image, static
#                build, distroless, numeric non-root USER); the Dockerfile's
#                exact go build, then an ELF check that the binary is static.
#   compose      deploy/validate compose: compose-go v2 (the loader Docker
#                Compose v2 uses: compose-spec schema, interpolation, anchors,
#                depends_on/network/volume references) plus hookd's layout;
#                also `docker compose config -q` when a Compose v2 plugin
#                is installed.
#   k8s          kustomize build (pinned kustomize from the module proxy);
#                kubeconform -strict against JSON schemas generated offline
#                from the OpenAPI spec in the k8s.io/kubernetes module;
#                deploy/validate k8s: strict decoding into k8s.io/api types
#                and cross-object checks; each step also run on a known-bad
#                manifest to prove it rejects it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
step() { printf '\n== %s\n' "$*"; }
fail() { echo "deploy-check: $*" >&2; exit 1; }

KUBECONFORM=github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
KUSTOMIZE=sigs.k8s.io/kustomize/kustomize/v5@v5.8.2 # v5.8.3 needs Go 1.27
K8S_VERSION=1.37.2                                  # OpenAPI spec from k8s.io/kubernetes@v$K8S_VERSION

cache="${XDG_CACHE_HOME:-$HOME/.cache}/hookd-deploy-check"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

want() { # want BINARY MODULE@VERSION: install unless that exact version is there
  local bin=$1 mod=$2
  if [ -x "$gobin/$bin" ] && go version -m "$gobin/$bin" 2>/dev/null | grep -q "mod.*${mod##*@}"; then
    return 0
  fi
  echo "installing $mod"
  go install "$mod"
}

step "tools"
want kubeconform "$KUBECONFORM"
want kustomize "$KUSTOMIZE"
echo "kubeconform $(kubeconform -v), kustomize $(kustomize version)"
# deploy/validate is its own module (its go.mod keeps k8s.io and compose-go
# out of hookd's); go build caches, so this is quick after the first run.
go -C deploy/validate build -o "$work/validate" .
validate="$work/validate"

schemas="$cache/schemas-v$K8S_VERSION"
if [ ! -s "$schemas/deployment-apps-v1.json" ]; then
  spec=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -f "$spec/api/openapi-spec/swagger.json" ] || fail "no swagger.json in k8s.io/kubernetes@v$K8S_VERSION"
  rm -rf "$schemas.tmp"
  "$validate" schemas -spec "$spec/api/openapi-spec/swagger.json" -out "$schemas.tmp"
  rm -rf "$schemas" && mv "$schemas.tmp" "$schemas"
fi
echo "Kubernetes $K8S_VERSION schemas (strict, standalone) in $schemas"

step "Dockerfile"
"$validate" dockerfile -gomod go.mod deploy/Dockerfile
# The image's build step, exactly as the Dockerfile runs it.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$work/hookd" ./cmd/hookd
"$validate" static "$work/hookd"

step "compose: deploy/compose.yaml"
if docker compose version >/dev/null 2>&1; then
  HOOKD_STRIPE_WEBHOOK_SECRET=whsec_check HOOKD_INGEST_TOKEN=ingest_check HOOKD_TOKEN_FILE=/dev/null \
    docker compose -f deploy/compose.yaml config -q
  echo "  ok    docker compose config -q ($(docker compose version --short))"
else
  echo "  skip  docker compose config -q: no Compose v2 plugin here (compose-go below is its loader)"
fi
"$validate" compose -source cmd/hookd deploy/compose.yaml

step "k8s: kustomize build deploy/k8s"
kustomize build deploy/k8s >"$work/rendered.yaml"
grep -c '^kind:' "$work/rendered.yaml" | xargs printf '  ok    rendered %s objects\n'

step "k8s: kubeconform -strict"
kc=(kubeconform -strict -summary -kubernetes-version "$K8S_VERSION"
  -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json")
"${kc[@]}" "$work/rendered.yaml" deploy/k8s/secret.example.yaml

step "k8s: typed decoding and cross-object checks"
"$validate" k8s -dir deploy/k8s -source cmd/hookd "$work/rendered.yaml"

step "the checks reject broken manifests"
# A misspelt field (top level and deep), a wrong type, a selector that matches nothing, an unknown
# compose key: each must fail for that reason, or the checks above prove
# nothing.
mutate() { # mutate IN OUT SED-EXPR: OUT is IN changed by SED-EXPR, which must apply
  sed "$3" "$1" >"$2"
  cmp -s "$1" "$2" && fail "mutation $3 did not apply to $1 (manifests changed?)"
  return 0
}
expect_fail() { # expect_fail NAME PATTERN CMD...: CMD fails, saying PATTERN
  local name=$1 pattern=$2; shift 2
  if "$@" >"$work/out" 2>&1; then cat "$work/out"; fail "accepted: $name"; fi
  grep -Eq "$pattern" "$work/out" || { cat "$work/out"; fail "$name failed, but not with /$pattern/"; }
  echo "  ok    rejected: $name"
}
mutate "$work/rendered.yaml" "$work/bad-field.yaml" 's/^  replicas: 3$/  replica: 3/'
mutate "$work/rendered.yaml" "$work/bad-nested.yaml" 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/'
mutate "$work/rendered.yaml" "$work/bad-type.yaml" 's/containerPort: 9090$/containerPort: "ninety"/'
mutate "$work/rendered.yaml" "$work/bad-ref.yaml" 's/^    app.kubernetes.io\/component: member$/    app.kubernetes.io\/component: membr/'
expect_fail "kubeconform: unknown field" "additional properties|not allowed" "${kc[@]}" "$work/bad-field.yaml"
expect_fail "kubeconform: unknown field deep in a pod template" "readOnlyRootFileSystem" "${kc[@]}" "$work/bad-nested.yaml"
expect_fail "kubeconform: wrong type" "expected integer|integer" "${kc[@]}" "$work/bad-type.yaml"
expect_fail "validate k8s: unknown field" 'unknown field "replica"' "$validate" k8s -dir deploy/k8s -source cmd/hookd "$work/bad-field.yaml"
expect_fail "validate k8s: Service selecting no pods" "Service/hookd-member-grpc: selects the pods of \[\]" \
  "$validate" k8s -dir deploy/k8s -source cmd/hookd "$work/bad-ref.yaml"
# The security model: the admin listener in no Service and reachable only
# from the monitoring namespace, members authenticating callers (and each
# other on the cluster port, with TLS from a Secret key), every container
# with an explicit --admin-addr.
mutate "$work/rendered.yaml" "$work/bad-admin-svc.yaml" 's/targetPort: http$/targetPort: admin/'
mutate "$work/rendered.yaml" "$work/bad-admin-np.yaml" 's/kubernetes.io\/metadata.name: monitoring/kubernetes.io\/metadata.name: default/'
mutate "$work/rendered.yaml" "$work/bad-noauth.yaml" '/--token-file=\|--grpc-client-ca=/d'
mutate "$work/rendered.yaml" "$work/bad-noadmin.yaml" '/--admin-addr=/d'
mutate "$work/rendered.yaml" "$work/bad-grpc-open.yaml" 's/^          hookd\/grpc-client: "true"$/          {}/'
mutate "$work/rendered.yaml" "$work/bad-nocluster-tls.yaml" '/--cluster-tls-cert=\|--cluster-tls-key=\|--cluster-tls-ca=/d'
mutate "$work/rendered.yaml" "$work/bad-cluster-key.yaml" 's/--cluster-tls-key=\/etc\/hookd\/tls\/tls.key/--cluster-tls-key=\/etc\/hookd\/tls\/cluster.key/'
for m in "Service exposing the admin port|bad-admin-svc|exposes the admin listener" \
  "admin port open to another namespace|bad-admin-np|may admit only the namespace \"monitoring\"" \
  "member gRPC on 0.0.0.0 without tokens or mTLS|bad-noauth|needs --token-file or --grpc-client-ca" \
  "container without --admin-addr|bad-noadmin|needs --admin-addr" \
  "member gRPC open to every pod|bad-grpc-open|admits every pod" \
  "members' cluster port on the pod IP without cluster TLS|bad-nocluster-tls|needs --cluster-tls-cert=" \
  "--cluster-tls-key naming no key of the Secret|bad-cluster-key|cluster-tls-key=/etc/hookd/tls/cluster.key: Secret \"hookd-member-tls\" has no key"; do
  IFS='|' read -r name file pattern <<<"$m"
  expect_fail "validate k8s: $name" "$pattern" "$validate" k8s -dir deploy/k8s -source cmd/hookd "$work/$file.yaml"
done
mutate deploy/compose.yaml "$work/compose.yaml" 's/^  hookd-gateway-2:$/&\n    restart_policy: always/'
expect_fail "compose-go: unknown service key" "restart_policy" "$validate" compose -source cmd/hookd "$work/compose.yaml"
mutate deploy/compose.yaml "$work/compose-admin.yaml" 's/^    ports: \["127.0.0.1:8081:8080"\]$/    ports: ["127.0.0.1:8081:8080", "127.0.0.1:9091:9091"]/'
expect_fail "validate compose: a published admin port" "publishes the admin port" "$validate" compose -source cmd/hookd "$work/compose-admin.yaml"
mutate deploy/compose.yaml "$work/compose-noauth.yaml" '/--token-file=/d'
expect_fail "validate compose: members without a tokens file" "needs --token-file" "$validate" compose -source cmd/hookd "$work/compose-noauth.yaml"
mutate deploy/compose.yaml "$work/compose-nocluster-tls.yaml" '/--cluster-tls-key=/d'
expect_fail "validate compose: members without a cluster TLS key" "needs --cluster-tls-key" "$validate" compose -source cmd/hookd "$work/compose-nocluster-tls.yaml"

step "deploy checks passed"
cat <<'EOF'
Not checked here (no Docker engine, no cluster): that the image builds and
runs, that etcd/PostgreSQL/hookd start and form a cluster, that the API
server admits the objects (admission, Pod Security, RBAC escalation), that
probes pass. Try those with `docker compose -f deploy/compose.yaml up` and
on a kind cluster (deploy/README.md).
EOF
