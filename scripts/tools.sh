#!/usr/bin/env bash
# Installs the pinned code-generation and developer tools into GOBIN (default
# $(go env GOPATH)/bin), skipping any tool already built at its pinned version.
set -euo pipefail

GOBIN=${GOBIN:-$(go env GOPATH)/bin}
export GOBIN
mkdir -p "$GOBIN"

# name  package@version
tools=(
	"buf github.com/bufbuild/buf/cmd/buf@v1.75.0"
	"protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
	"protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0"
	"protoc-gen-grpc-gateway github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.33.0"
	"protoc-gen-openapiv2 github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0"
	"grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
	"staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2"
	"gotestsum gotest.tools/gotestsum@v1.13.0"
)

for entry in "${tools[@]}"; do
	read -r name pkg <<<"$entry"
	want=${pkg##*@}
	if [[ -x "$GOBIN/$name" ]] && go version -m "$GOBIN/$name" 2>/dev/null | awk '$1=="mod"{print $3}' | grep -qx "$want"; then
		continue
	fi
	echo "installing $name $want"
	# Outside the workspace so the tools' own go.mod decides their dependencies.
	(cd / && GOWORK=off GOFLAGS=-buildvcs=false go install "$pkg")
done
