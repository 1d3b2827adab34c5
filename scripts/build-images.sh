#!/usr/bin/env bash
# make images: writes each image as an OCI image archive (an oci-layout directory in a tar)
# with no container daemon, no registry and no base image. umoci (Debian) writes the layout:
# blobs, manifest, config; this script only lays out the one-file root filesystem as a
# reproducible tar and names the result in index.json.
#
# Usage: scripts/build-images.sh OUT_DIR NAME=REF=BINARY=ENTRYPOINT[,ARG...][=PORTS[=STOPSIGNAL]] ...
#   NAME        archive file name: OUT_DIR/NAME.oci.tar
#   REF         full image reference, e.g. ghcr.io/drain-io/drain-helper:0.1.0
#   BINARY      the static binary, copied to /<its file name> in the image
#   ENTRYPOINT  entrypoint, then the default arguments (CMD), comma separated
#   PORTS       exposed TCP ports, comma separated (may be empty)
#   STOPSIGNAL  the image's stop signal (may be empty)
# Environment: IMAGE_VERSION, IMAGE_REVISION, IMAGE_SOURCE (OCI labels), SOURCE_DATE_EPOCH
# (every timestamp in the archive; default: the last commit's time).
#
# Same binaries and variables, same bytes: fixed mtimes, files owned by 0:0, sorted tar
# entries without atime/ctime, no history timestamps from the clock (scripts/check-images.sh
# rebuilds and compares).
set -euo pipefail

fail() {
	echo "build-images: $*" >&2
	exit 1
}

out=${1:?usage: scripts/build-images.sh OUT_DIR NAME=REF=BINARY=ENTRYPOINT[=PORTS[=STOPSIGNAL]] ...}
shift
[ $# -gt 0 ] || fail "no image given (NAME=REF=BINARY=ENTRYPOINT...)"
for tool in umoci jq tar; do
	command -v "$tool" >/dev/null || fail "$tool is missing: run make deps (scripts/install-tools.sh installs it)"
done

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null) ||
		fail "SOURCE_DATE_EPOCH is unset and there is no git commit to take it from: set it, e.g. SOURCE_DATE_EPOCH=0"
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || fail "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not whole seconds since 1970"
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
version=${IMAGE_VERSION:?set IMAGE_VERSION (the Makefile takes it from Cargo.toml)}
revision=${IMAGE_REVISION:-unknown}
source=${IMAGE_SOURCE:-https://github.com/drain-io/drain-webhook}

# Reproducible tar of DIR's content: names sorted, fixed mtime, numeric owner 0:0, no
# atime/ctime or other per-host PAX records.
repro_tar() {
	tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf "$2" .
}

# The binaries are built for the host (Makefile HOST_TRIPLE), so the image is for its CPU.
go_arch() {
	case "$(uname -m)" in
	x86_64 | amd64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	*) fail "no OCI architecture name known for $(uname -m)" ;;
	esac
}
arch=$(go_arch)

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for spec in "$@"; do
	IFS='=' read -r name ref bin entry ports stopsignal <<<"$spec"
	[[ -n "$name" && -n "$ref" && -n "$bin" && -n "$entry" ]] ||
		fail "bad image spec '$spec': want NAME=REF=BINARY=ENTRYPOINT[,ARG...][=PORTS[=STOPSIGNAL]]"
	[[ "$ref" == */*:* ]] || fail "image reference '$ref' has no repository path or tag: want e.g. ghcr.io/drain-io/$name:$version"
	[[ -f "$bin" && -x "$bin" ]] || fail "$bin is not an executable file (build it first: make images does)"
	tag=${ref##*:}

	# The root filesystem: the binary alone, at the image root, mode 0755.
	rootfs="$work/$name.rootfs"
	mkdir -p "$rootfs"
	install -m 0755 "$bin" "$rootfs/$(basename "$bin")"
	chmod 0755 "$rootfs"
	repro_tar "$rootfs" "$work/$name.layer.tar"

	layout="$work/$name"
	umoci init --layout "$layout"
	umoci new --image "$layout:$tag"
	umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
		--history.created_by "make images: $(basename "$bin")" "$work/$name.layer.tar"

	IFS=',' read -r -a argv <<<"$entry"
	config=(--created "$created" --author "drain-webhook make images" --no-history
		--os linux --architecture "$arch"
		--config.user 65532:65532 --config.workingdir /
		--config.entrypoint "${argv[0]}"
		--config.label "org.opencontainers.image.source=$source"
		--config.label "org.opencontainers.image.version=$version"
		--config.label "org.opencontainers.image.revision=$revision"
		--config.label "org.opencontainers.image.created=$created"
		--config.label "org.opencontainers.image.licenses=Apache-2.0"
		--config.label "org.opencontainers.image.title=$name")
	for arg in "${argv[@]:1}"; do config+=(--config.cmd "$arg"); done
	if [ -n "${ports:-}" ]; then
		IFS=',' read -r -a port_list <<<"$ports"
		for port in "${port_list[@]}"; do config+=(--config.exposedports "$port/tcp"); done
	fi
	[ -z "${stopsignal:-}" ] || config+=(--config.stopsignal "$stopsignal")
	umoci config --image "$layout:$tag" "${config[@]}" \
		--manifest.annotation "org.opencontainers.image.source=$source" \
		--manifest.annotation "org.opencontainers.image.version=$version" \
		--manifest.annotation "org.opencontainers.image.revision=$revision" \
		--manifest.annotation "org.opencontainers.image.created=$created"
	umoci gc --layout "$layout"

	# Name the image with its full reference, the way containerd's own exporter does:
	# `ctr images import` and `kind load image-archive` name it from io.containerd.image.name
	# (a tag-only ref.name is dropped without --base-name); podman and skopeo read ref.name.
	jq -c --arg ref "$ref" \
		'.manifests |= map(.annotations = {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $ref})' \
		"$layout/index.json" >"$work/index.json"
	mv "$work/index.json" "$layout/index.json"

	# Modes and times independent of the host's umask and clock.
	chmod -R u=rwX,go=rX "$layout"
	find "$layout" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	repro_tar "$layout" "$work/$name.oci.tar"
	mv -f "$work/$name.oci.tar" "$out/$name.oci.tar"
	digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
	echo "build-images: $out/$name.oci.tar  $ref  manifest $digest"
done
