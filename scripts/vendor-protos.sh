#!/usr/bin/env bash
# Re-vendors the third-party protos that buf needs into third_party/, taken from Go
# module downloads because the Buf registry is not reachable from every build machine.
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY_V1=github.com/grpc-ecosystem/grpc-gateway@v1.16.0
ISTIO_API=istio.io/api@v1.31.1
PROTOVALIDATE=github.com/bufbuild/protovalidate@v1.2.2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Outside any module or workspace, so the download never touches go.work or a go.mod.
dir() { (cd "$tmp" && GOWORK=off GOFLAGS= go mod download -json "$1") | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }

gw=$(dir "$GATEWAY_V1")
istio=$(dir "$ISTIO_API")
pv=$(dir "$PROTOVALIDATE")

rm -rf third_party/google third_party/buf
mkdir -p third_party/google/api third_party/buf/validate
cp "$gw/third_party/googleapis/google/api/annotations.proto" third_party/google/api/
cp "$gw/third_party/googleapis/google/api/http.proto" third_party/google/api/
cp "$istio/common-protos/google/api/field_behavior.proto" third_party/google/api/
cp "$pv/proto/protovalidate/buf/validate/validate.proto" third_party/buf/validate/
chmod 0644 third_party/google/api/*.proto third_party/buf/validate/*.proto
cat > third_party/README.md <<MD
# third_party

Protos that eventshop's own protos import, vendored so \`buf\` works offline.
Re-vendor with \`scripts/vendor-protos.sh\`; sources:

- google/api/annotations.proto, http.proto: $GATEWAY_V1 (third_party/googleapis)
- google/api/field_behavior.proto: $ISTIO_API (common-protos)
- buf/validate/validate.proto: $PROTOVALIDATE (proto/protovalidate)
MD
echo "vendored into third_party/"
