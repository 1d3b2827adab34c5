#!/usr/bin/env bash
# make images: writes each image as a multi-platform OCI image archive (an oci-layout directory
# in a tar) with no container daemon, no registry and no base image. umoci (Debian) writes one
# image per platform into the layout: blobs, manifest, config (with its architecture and os);
# this script lays out each one-file root filesystem as a reproducible tar, then writes the
# image index that lists the platforms' manifests (each with its `platform`) and names that
# index in index.json.
#
# Usage: scripts/build-images.sh OUT_DIR NAME=REF=BINARIES=ENTRYPOINT[,ARG...][=PORTS[=STOPSIGNAL]] ...
#   NAME        archive file name: OUT_DIR/NAME.oci.tar
#   REF         full image reference, e.g. ghcr.io/drain-io/drain-helper:0.1.0
#   BINARIES    ARCH:PATH,... one static binary per platform (ARCH: amd64 or arm64, the OCI
#               names; linux only), each copied to /<its file name> in that platform's image;
#               the file names must agree, and each ELF's machine must be its ARCH
#   ENTRYPOINT  entrypoint, then the default arguments (CMD), comma separated
#   PORTS       exposed TCP ports, comma separated (may be empty)
#   STOPSIGNAL  the image's stop signal (may be empty)
# Environment: IMAGE_VERSION, IMAGE_REVISION, IMAGE_SOURCE (OCI labels), SOURCE_DATE_EPOCH
# (every timestamp in the archive; default: the last commit's time).
#
# Same binaries and variables, same bytes: fixed mtimes, files owned by 0:0, sorted tar
# entries without atime/ctime, no history timestamps from the clock, platforms in the order
# given (scripts/check-images.sh rebuilds and compares).
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

# The OCI architecture of an ELF binary, from its header's e_machine (2 bytes, little-endian,
# at offset 18): the config says what the layer really holds, whatever the file is called.
elf_arch() {
	[ "$(od -An -c -N4 "$1" | tr -d ' \n')" = "177ELF" ] || fail "$1 is not an ELF file"
	case "$(od -An -t u2 -j 18 -N 2 "$1" | tr -d ' \n')" in
	62) echo amd64 ;;   # EM_X86_64 0x3E
	183) echo arm64 ;;  # EM_AARCH64 0xB7
	*) fail "$1 is an ELF file for machine $(od -An -t u2 -j 18 -N 2 "$1" | tr -d ' \n'), neither x86-64 nor aarch64" ;;
	esac
}

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for spec in "$@"; do
	IFS='=' read -r name ref bins entry ports stopsignal <<<"$spec"
	[[ -n "$name" && -n "$ref" && -n "$bins" && -n "$entry" ]] ||
		fail "bad image spec '$spec': want NAME=REF=ARCH:BINARY,...=ENTRYPOINT[,ARG...][=PORTS[=STOPSIGNAL]]"
	[[ "$ref" == */*:* ]] || fail "image reference '$ref' has no repository path or tag: want e.g. ghcr.io/drain-io/$name:$version"
	IFS=',' read -r -a platforms <<<"$bins"

	layout="$work/$name"
	umoci init --layout "$layout"
	archs=()
	file=
	for platform in "${platforms[@]}"; do
		arch=${platform%%:*}
		bin=${platform#*:}
		[[ "$platform" == *:* && ( "$arch" == amd64 || "$arch" == arm64 ) ]] ||
			fail "$name: bad platform '$platform': want amd64:BINARY or arm64:BINARY"
		[[ " ${archs[*]} " != *" $arch "* ]] || fail "$name: $arch is given twice"
		archs+=("$arch")
		[[ -f "$bin" && -x "$bin" ]] || fail "$bin is not an executable file (build it first: make images does)"
		[ "$(elf_arch "$bin")" = "$arch" ] || fail "$bin is an $(elf_arch "$bin") binary, given as $arch"
		[[ -z "$file" || "$file" == "$(basename "$bin")" ]] ||
			fail "$name: the platforms' binaries are named $file and $(basename "$bin"): the entrypoint needs one name"
		file=$(basename "$bin")

		# The root filesystem: the binary alone, at the image root, mode 0755.
		rootfs="$work/$name.$arch.rootfs"
		mkdir -p "$rootfs"
		install -m 0755 "$bin" "$rootfs/$file"
		chmod 0755 "$rootfs"
		repro_tar "$rootfs" "$work/$name.$arch.layer.tar"

		# One image per platform, under a tag of its architecture for now (index.json is
		# rewritten below, so no such tag is left in the archive).
		umoci new --image "$layout:$arch"
		umoci raw add-layer --image "$layout:$arch" --history.created "$created" \
			--history.created_by "make images: $file" "$work/$name.$arch.layer.tar"

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
		umoci config --image "$layout:$arch" "${config[@]}" \
			--manifest.annotation "org.opencontainers.image.source=$source" \
			--manifest.annotation "org.opencontainers.image.version=$version" \
			--manifest.annotation "org.opencontainers.image.revision=$revision" \
			--manifest.annotation "org.opencontainers.image.created=$created"
	done
	umoci gc --layout "$layout"

	# The image index: each platform's manifest descriptor with the platform its config names,
	# in the order given. Written as a blob like the others (its digest is what a registry
	# shows for the multi-platform tag).
	descriptors=()
	for arch in "${archs[@]}"; do
		descriptor=$(jq -c --arg tag "$arch" \
			'.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $tag) | {mediaType, digest, size}' \
			"$layout/index.json")
		[ -n "$descriptor" ] || fail "$name: umoci wrote no manifest for $arch"
		manifest_blob="$layout/blobs/sha256/$(jq -r '.digest | ltrimstr("sha256:")' <<<"$descriptor")"
		config_blob="$layout/blobs/sha256/$(jq -r '.config.digest | ltrimstr("sha256:")' "$manifest_blob")"
		descriptors+=("$(jq -c --slurpfile config "$config_blob" \
			'. + {platform: {architecture: $config[0].architecture, os: $config[0].os}}' <<<"$descriptor")")
	done
	printf '%s\n' "${descriptors[@]}" |
		jq -cs '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' \
			>"$work/image-index.json"
	index_digest="sha256:$(sha256sum "$work/image-index.json" | cut -d' ' -f1)"
	index_size=$(stat -c %s "$work/image-index.json")
	mv "$work/image-index.json" "$layout/blobs/sha256/${index_digest#sha256:}"

	# index.json names the image index with its full reference, the way containerd's own
	# exporter does: `ctr images import` and `kind load image-archive` name it from
	# io.containerd.image.name (a tag-only ref.name is dropped without --base-name); podman and
	# skopeo read ref.name.
	jq -cn --arg ref "$ref" --arg digest "$index_digest" --argjson size "$index_size" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
		  manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $digest, size: $size,
		    annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $ref}}]}' \
		>"$layout/index.json"

	# Modes and times independent of the host's umask and clock.
	chmod -R u=rwX,go=rX "$layout"
	find "$layout" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	repro_tar "$layout" "$work/$name.oci.tar"
	mv -f "$work/$name.oci.tar" "$out/$name.oci.tar"
	echo "build-images: $out/$name.oci.tar  $ref  index $index_digest (${archs[*]})"
done
