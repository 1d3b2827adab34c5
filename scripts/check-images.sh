#!/usr/bin/env bash
# make images-check: every archive `make images` wrote is checked as a consumer would see it.
#  1. a valid OCI layout: index.json -> image index -> one manifest per platform (linux/amd64,
#     linux/arm64, each descriptor with its `platform`) -> config and layers, each digest and
#     size matching its blob, diff_ids matching the uncompressed layers, no stray blob; skopeo
#     (an implementation that is not ours) reads the index, picks each platform and copies all;
#  2. each config: architecture and os those of the index entry and of the binary (the ELF
#     header's machine: a mislabelled platform fails), user 65532:65532, entrypoint and
#     arguments, ports, stop signal, OCI labels; index.json names the image index with its full
#     reference (containerd, kind, podman, skopeo);
#  3. each layer: only the binary, at the image root, 0755, owned by 0:0, the built bytes;
#  4. each binary runs in an empty root as 65532 (no libraries, no /proc), arm64 ones under
#     qemu-aarch64-static: the helper both as an init container (`install /.drain`, then the
#     installed copy runs) and as an image volume mounted at /.drain;
#  5. reproducible: built again from the same binaries, every archive has the same bytes;
#  6. drain-webhook and drain-helper are named as the chart's defaults (unless overridden).
# Usage: scripts/check-images.sh IMAGES_DIR SPEC... (the specs scripts/build-images.sh took)
set -euo pipefail

dir=${1:?usage: scripts/check-images.sh IMAGES_DIR NAME=REF=ARCH:BINARY,...=ENTRYPOINT[=PORTS[=STOPSIGNAL]] ...}
shift
[ $# -gt 0 ] || { echo "check-images: no image spec given" >&2; exit 1; }
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
: "${IMAGE_VERSION:?set IMAGE_VERSION and IMAGE_REVISION as for build-images.sh (make images-check does)}"
: "${IMAGE_REVISION:?set IMAGE_REVISION as for build-images.sh (make images-check does)}"

fail() {
	echo "check-images: FAIL: $*" >&2
	exit 1
}
ok() { echo "check-images: ok: $*"; }

for tool in jq skopeo tar sha256sum chroot od qemu-aarch64-static; do
	command -v "$tool" >/dev/null || fail "$tool is missing: run make deps"
done
[ "$(id -u)" = 0 ] || fail "the empty-root checks need root (chroot); CI runs as root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The OCI architecture of an ELF binary from its header's e_machine (offset 18, 2 bytes,
# little-endian): 0x3E x86-64, 0xB7 aarch64. Read here independently of build-images.sh.
elf_arch() {
	[ "$(od -An -c -N4 "$1" | tr -d ' \n')" = "177ELF" ] || { echo "not-elf"; return; }
	case "$(od -An -t x2 -j 18 -N 2 "$1" | tr -d ' \n')" in
	003e) echo amd64 ;;
	00b7) echo arm64 ;;
	*) echo "machine-0x$(od -An -t x2 -j 18 -N 2 "$1" | tr -d ' \n')" ;;
	esac
}

# blob DIGEST SIZE: the blob exists, hashes to its name and has the size its descriptor says.
blob() {
	local digest=$1 size=$2 file
	[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$name: descriptor digest '$digest' is not sha256:<64 hex>"
	file="$layout/blobs/sha256/${digest#sha256:}"
	[ -f "$file" ] || fail "$name: blob $digest is missing"
	[ "$(sha256sum "$file" | cut -d' ' -f1)" = "${digest#sha256:}" ] || fail "$name: blob $digest does not hash to its digest"
	[ "$(stat -c %s "$file")" = "$size" ] || fail "$name: blob $digest is $(stat -c %s "$file") bytes, its descriptor says $size"
	echo "$file"
}

qemu=$(command -v qemu-aarch64-static)
for spec in "$@"; do
	IFS='=' read -r name ref bins entry ports stopsignal <<<"$spec"
	IFS=',' read -r -a platforms <<<"$bins"
	archive="$dir/$name.oci.tar"
	[ -f "$archive" ] || fail "$archive is missing (run make images)"
	layout="$work/$name"
	mkdir -p "$layout"
	tar -xf "$archive" -C "$layout"

	# 1. Layout, index.json, the image index.
	[ "$(jq -c . "$layout/oci-layout")" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "$name: oci-layout is $(cat "$layout/oci-layout")"
	index="$layout/index.json"
	[ "$(jq '.schemaVersion' "$index")" = 2 ] || fail "$name: index.json schemaVersion is not 2"
	[ "$(jq '.manifests | length' "$index")" = 1 ] || fail "$name: index.json lists $(jq '.manifests | length' "$index") descriptors, want 1 (the image index)"
	[ "$(jq -r '.manifests[0].mediaType' "$index")" = application/vnd.oci.image.index.v1+json ] ||
		fail "$name: index.json's entry is $(jq -r '.manifests[0].mediaType' "$index"), not an OCI image index"
	for key in io.containerd.image.name org.opencontainers.image.ref.name; do
		got=$(jq -r --arg k "$key" '.manifests[0].annotations[$k] // ""' "$index")
		[ "$got" = "$ref" ] || fail "$name: index annotation $key is '$got', want '$ref'"
	done
	index_digest=$(jq -r '.manifests[0].digest' "$index")
	image_index=$(blob "$index_digest" "$(jq '.manifests[0].size' "$index")")
	[ "$(jq -r '.mediaType' "$image_index")" = application/vnd.oci.image.index.v1+json ] || fail "$name: the image index's mediaType is $(jq -r .mediaType "$image_index")"
	[ "$(jq '.schemaVersion' "$image_index")" = 2 ] || fail "$name: the image index's schemaVersion is not 2"
	want_platforms=$(for platform in "${platforms[@]}"; do echo "linux/${platform%%:*}"; done)
	got_platforms=$(jq -r '.manifests[] | "\(.platform.os)/\(.platform.architecture)"' "$image_index")
	[ "$got_platforms" = "$want_platforms" ] || fail "$name: the image index lists platforms
$got_platforms
want
$want_platforms"

	# 2-4 for each platform's manifest.
	IFS=',' read -r -a argv <<<"$entry"
	want_entry=$(jq -cn --arg e "${argv[0]}" '[$e]')
	want_cmd=$(printf '%s\n' "${argv[@]:1}" | jq -Rcs 'split("\n") | map(select(length > 0)) | if length == 0 then null else . end')
	want_ports=$(jq -Rc 'split(",") | map(select(length > 0) | . + "/tcp") | sort | if length == 0 then null else . end' <<<"${ports:-}")
	for i in "${!platforms[@]}"; do
		arch=${platforms[$i]%%:*}
		bin=${platforms[$i]#*:}
		what="$name linux/$arch"
		descriptor=$(jq -c --argjson i "$i" '.manifests[$i]' "$image_index")
		[ "$(jq -r '.mediaType' <<<"$descriptor")" = application/vnd.oci.image.manifest.v1+json ] || fail "$what: index entry is not an OCI manifest"
		manifest=$(blob "$(jq -r '.digest' <<<"$descriptor")" "$(jq '.size' <<<"$descriptor")")
		# umoci 0.4 leaves the manifest's own mediaType out (optional: the index descriptor says it).
		[ "$(jq -r '.mediaType // "application/vnd.oci.image.manifest.v1+json"' "$manifest")" = application/vnd.oci.image.manifest.v1+json ] ||
			fail "$what: manifest mediaType is $(jq -r .mediaType "$manifest")"
		[ "$(jq '.schemaVersion' "$manifest")" = 2 ] || fail "$what: manifest schemaVersion is not 2"
		[ "$(jq -r '.config.mediaType' "$manifest")" = application/vnd.oci.image.config.v1+json ] || fail "$what: config mediaType"
		config=$(blob "$(jq -r '.config.digest' "$manifest")" "$(jq '.config.size' "$manifest")")
		[ "$(jq '.layers | length' "$manifest")" = 1 ] || fail "$what: $(jq '.layers | length' "$manifest") layers, want 1"
		[ "$(jq -r '.layers[0].mediaType' "$manifest")" = application/vnd.oci.image.layer.v1.tar+gzip ] || fail "$what: layer mediaType"
		layer=$(blob "$(jq -r '.layers[0].digest' "$manifest")" "$(jq '.layers[0].size' "$manifest")")
		diff_id="sha256:$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)"
		[ "$(jq -r '.rootfs.diff_ids | join(",")' "$config")" = "$diff_id" ] || fail "$what: rootfs.diff_ids is not the uncompressed layer's digest $diff_id"
		[ "$(jq -r '.rootfs.type' "$config")" = layers ] || fail "$what: rootfs.type"
		ok "$what: manifest $(jq -r '.digest' <<<"$descriptor"), every digest and size matches"

		# Another implementation picks this platform's manifest out of the index.
		skopeo_arch=$(skopeo inspect --override-os linux --override-arch "$arch" "oci-archive:$archive" | jq -r .Architecture)
		[ "$skopeo_arch" = "$arch" ] || fail "$what: skopeo picks an image for $skopeo_arch"

		# 2. Config: the platform, then the rest.
		checks=(
			".architecture=$arch"
			".os=linux"
			".config.User=65532:65532"
			".config.Entrypoint=$want_entry"
			".config.Cmd=$want_cmd"
			".config.ExposedPorts=$want_ports"
			".config.StopSignal=${stopsignal:-null}"
			".config.Labels[\"org.opencontainers.image.version\"]=$IMAGE_VERSION"
			".config.Labels[\"org.opencontainers.image.revision\"]=$IMAGE_REVISION"
			".config.Labels[\"org.opencontainers.image.source\"]=https://github.com/drain-io/drain-webhook"
		)
		for check in "${checks[@]}"; do
			path=${check%%=*}
			want=${check#*=}
			case "$path" in
			.config.ExposedPorts) got=$(jq -c '.config.ExposedPorts | if . == null then null else keys | sort end' "$config") ;;
			*) got=$(jq -cr "$path" "$config") ;;
			esac
			[ "$got" = "$want" ] || fail "$what: config $path is '$got', want '$want'"
		done
		ok "$what: config linux/$arch, user 65532:65532, entrypoint $want_entry cmd $want_cmd ports $want_ports stop signal ${stopsignal:-none}, labels"

		# 3. The layer: the binary alone at the root, for the CPU the config names.
		listing=$(tar -tvzf "$layer" --numeric-owner --full-time | awk '{print $1, $2, $6}')
		file=$(basename "$bin")
		want_listing=$(printf 'drwxr-xr-x 0/0 ./\n-rwxr-xr-x 0/0 ./%s' "$file")
		[ "$listing" = "$want_listing" ] || fail "$what: layer holds
$listing
want
$want_listing"
		rootfs="$work/$name.$arch.rootfs"
		mkdir -p "$rootfs"
		tar -xzf "$layer" -C "$rootfs"
		cmp -s "$rootfs/$file" "$bin" || fail "$what: /$file in the image differs from $bin"
		machine=$(elf_arch "$rootfs/$file")
		[ "$machine" = "$(jq -r .architecture "$config")" ] ||
			fail "$what: /$file is an ELF binary for $machine, the config says $(jq -r .architecture "$config")"
		ok "$what: the layer is /$file alone (0755, 0:0), the built bytes, an ELF binary for $machine"

		# 4. Runs in an empty root, as the image's user; an arm64 binary through qemu's user
		# mode (a static binary itself), copied into the root for the run.
		emulator=()
		if [ "$arch" = arm64 ]; then
			install -m 0755 "$qemu" "$rootfs/.qemu-aarch64-static"
			emulator=(/.qemu-aarch64-static)
		fi
		run() { chroot --userspec=65532:65532 "$rootfs" "${emulator[@]}" "$@"; }
		case "$name" in
		drain-webhook)
			version=$(run /drain-webhook --version) || fail "$what: --version does not run in an empty root"
			[ "$version" = "drain-webhook $IMAGE_VERSION" ] || fail "$what: --version printed '$version'"
			run /drain-webhook --help | grep -q serve || fail "$what: --help does not list serve"
			# The planner, end to end, offline: the seed pod comes out mutated.
			cp "$root_dir/tests/fixtures/pods/seed-nginx-app.yaml" "$rootfs/pod.yaml"
			run /drain-webhook inject -f /pod.yaml --kube-version 1.34 | grep -q 'drain.io/status' ||
				fail "$what: inject -f in an empty root does not mutate the seed pod"
			rm "$rootfs/pod.yaml"
			ok "$what: --version, --help and inject -f run in an empty root as 65532"
			;;
		drain-helper)
			# Init container: `install /.drain` into a shared emptyDir, then the copy runs.
			mkdir -m 1777 "$rootfs/.drain"
			run /drain-helper install /.drain || fail "$what: install /.drain fails in an empty root"
			cmp -s "$rootfs/.drain/drain-helper" "$bin" || fail "$what: install copied other bytes"
			version=$(run /.drain/drain-helper --version) || fail "$what: the installed /.drain/drain-helper does not run"
			[ "$version" = "drain-helper $IMAGE_VERSION" ] || fail "$what: the installed copy's --version printed '$version'"
			# Image volume (KEP-4639): the image's root mounted at /.drain of another container.
			volume="$work/$name.$arch.volume"
			mkdir -p "$volume/.drain"
			tar -xzf "$layer" -C "$volume/.drain"
			[ ${#emulator[@]} = 0 ] || install -m 0755 "$qemu" "$volume${emulator[0]}"
			chroot --userspec=65532:65532 "$volume" "${emulator[@]}" /.drain/drain-helper --version >/dev/null ||
				fail "$what: /.drain/drain-helper does not run from the image mounted at /.drain"
			log=$(chroot --userspec=65532:65532 "$volume" "${emulator[@]}" /.drain/drain-helper prestop --delay 0 2>&1) ||
				fail "$what: prestop from the image volume fails: $log"
			ok "$what: runs as an init container (install /.drain, the copy runs) and as an image volume at /.drain"
			;;
		*)
			run "/$file" --version >/dev/null || fail "$what: --version does not run in an empty root"
			ok "$what: --version runs in an empty root as 65532"
			;;
		esac
	done

	blobs=$(find "$layout/blobs/sha256" -type f | wc -l)
	[ "$blobs" = $((1 + 3 * ${#platforms[@]})) ] ||
		fail "$name: $blobs blobs, want $((1 + 3 * ${#platforms[@]})) (the image index, and per platform a manifest, a config, a layer)"
	ok "$name: image index $index_digest of $(echo "$got_platforms" | paste -sd' '), no stray blob"

	# Another implementation reads it: the same index digest, and a full copy of every
	# platform verifies each blob.
	skopeo_digest=$(skopeo inspect "oci-archive:$archive" | jq -r .Digest)
	[ "$skopeo_digest" = "$index_digest" ] || fail "$name: skopeo sees $skopeo_digest, index.json names $index_digest"
	skopeo copy -q --all "oci-archive:$archive" "oci:$work/$name.copy:check" || fail "$name: skopeo cannot copy the archive's platforms"
	ok "$name: skopeo inspects it and copies every platform"
done

# 6. The names are the chart's defaults, so `helm install` with no image values finds the
# images loaded from these archives (skipped only when the Makefile's names were overridden).
if [ "${IMAGE_NAMES_OVERRIDDEN:-}" != 1 ]; then
	helm=${HELM:-$root_dir/.tools/bin/helm}
	rendered=$("$helm" template drain-webhook "$root_dir/charts/drain-webhook") || fail "helm template of the chart failed"
	chart_webhook=$(sed -n 's/^ *image: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' <<<"$rendered" | head -n 1)
	chart_helper=$(grep -A1 -- '- name: DRAIN_HELPER_IMAGE$' <<<"$rendered" | sed -n 's/^ *value: *"\(.*\)"$/\1/p')
	for spec in "$@"; do
		IFS='=' read -r name ref _ <<<"$spec"
		case "$name" in
		drain-webhook) want=$chart_webhook ;;
		drain-helper) want=$chart_helper ;;
		*) continue ;;
		esac
		[ "$ref" = "$want" ] || fail "$name is named $ref, the chart's default is '$want': align the Makefile's IMAGE_REPOSITORY/IMAGE_TAG with charts/drain-webhook"
		ok "$name: named as the chart's default ($want)"
	done
fi

# 5. Reproducible: the same binaries and variables give the same bytes.
"$root_dir/scripts/build-images.sh" "$work/again" "$@" >/dev/null
for spec in "$@"; do
	name=${spec%%=*}
	cmp -s "$dir/$name.oci.tar" "$work/again/$name.oci.tar" ||
		fail "$name: a second build differs: $(sha256sum "$dir/$name.oci.tar" "$work/again/$name.oci.tar")"
	ok "$name: rebuilt to the same bytes ($(sha256sum "$dir/$name.oci.tar" | cut -c1-16)...)"
done
echo "check-images: all checks passed for $# images in $dir"
