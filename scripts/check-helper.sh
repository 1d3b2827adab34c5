#!/usr/bin/env bash
# make helper-check: the drain-helper binary that `make helper` (or `make helper-arm64`, run
# under qemu-aarch64-static) built is static, under the size budget (DESIGN.md section 4:
# 1 MiB), and runs and installs itself in an empty chroot (no libraries, no /proc), also as a
# non-root user. Every check fails loudly; nothing is skipped.
set -euo pipefail

bin=${1:?usage: scripts/check-helper.sh PATH-TO-drain-helper}
max_bytes=${HELPER_MAX_BYTES:-1048576}

fail() {
	echo "check-helper: FAIL: $*" >&2
	exit 1
}
ok() { echo "check-helper: ok: $*"; }

[[ -f "$bin" && -x "$bin" ]] || fail "$bin does not exist or is not executable (run make helper)"

# 1. Static: an ELF executable without a PT_INTERP program header asks for no dynamic loader
# (static-pie keeps PT_DYNAMIC for its self-relocation, which is fine). Parsed with od, so no
# binutils or file(1) are needed.
u() { od -An -t "u$3" -j "$2" -N "$3" "$1" | tr -d ' \n'; }
[ "$(od -An -c -N4 "$bin" | tr -d ' \n')" = "177ELF" ] || fail "$bin is not an ELF file"
[ "$(u "$bin" 4 1)" = 2 ] || fail "$bin is not a 64-bit ELF"
[ "$(u "$bin" 5 1)" = 1 ] || fail "$bin is not little-endian"
phoff=$(u "$bin" 32 8)
phentsize=$(u "$bin" 54 2)
phnum=$(u "$bin" 56 2)
[ "$phnum" -gt 0 ] || fail "$bin has no program headers"
for ((i = 0; i < phnum; i++)); do
	if [ "$(u "$bin" $((phoff + i * phentsize)) 4)" = 3 ]; then
		fail "$bin has a PT_INTERP header: it is dynamically linked"
	fi
done
ok "no PT_INTERP in $phnum program headers"
# The system tools must agree where they exist (ldd is part of every glibc system).
if command -v file >/dev/null; then
	described=$(file -b "$bin")
	case "$described" in
	*"statically linked"* | *"static-pie linked"*) ok "file: $described" ;;
	*) fail "file says: $described" ;;
	esac
fi
if command -v ldd >/dev/null; then
	ldd_out=$(ldd "$bin" 2>&1 || true)
	ldd_out=$(tr -s ' \t\n' ' ' <<<"$ldd_out")
	ldd_out=${ldd_out# }
	ldd_out=${ldd_out% }
	case "$ldd_out" in
	*"statically linked"* | *"not a dynamic executable"*) ok "ldd: $ldd_out" ;;
	*) fail "ldd says: $ldd_out" ;;
	esac
fi

# 2. Size.
size=$(stat -c %s "$bin")
[ "$size" -lt "$max_bytes" ] || fail "$bin is $size bytes, the budget is under $max_bytes"
ok "size $size bytes (< $max_bytes)"

# 3. An empty chroot: only the binary, no libraries, no /proc. Needs root (CI runs as root).
# An arm64 helper on another host (`make images` cross-compiles it) runs through qemu's user
# mode: qemu-aarch64-static, itself static, is copied into the root for that.
[ "$(id -u)" = 0 ] || fail "the chroot check needs root (CI runs as root)"
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
cp "$bin" "$root/drain-helper"
machine=$(u "$bin" 18 2)
emulator=()
case "$machine/$(uname -m)" in
62/x86_64 | 183/aarch64) ;;
183/*)
	qemu=$(command -v qemu-aarch64-static) || fail "$bin is an arm64 binary and qemu-aarch64-static is missing: run make deps"
	install -m 0755 "$qemu" "$root/.qemu-aarch64-static"
	emulator=(/.qemu-aarch64-static)
	ok "arm64 binary: runs under $("$qemu" --version | sed -n 1p)"
	;;
*) fail "$bin is for ELF machine $machine, which this $(uname -m) host cannot run" ;;
esac
version=$(chroot "$root" "${emulator[@]}" /drain-helper --version) || fail "--version does not run in an empty chroot"
outside=()
[ ${#emulator[@]} = 0 ] || outside=("$qemu")
[ "$version" = "drain-helper $("${outside[@]}" "$bin" --version | cut -d' ' -f2)" ] || fail "--version printed: $version"
ok "runs in an empty chroot: $version"

mkdir "$root/out"
chroot "$root" "${emulator[@]}" /drain-helper install /out || fail "install fails in an empty chroot"
[ -x "$root/out/drain-helper" ] || fail "install left no $root/out/drain-helper"
[ "$(stat -c %a "$root/out/drain-helper")" = 755 ] || fail "installed mode is $(stat -c %a "$root/out/drain-helper"), not 755"
cmp -s "$bin" "$root/out/drain-helper" || fail "the installed copy differs from the binary"
[ "$(find "$root/out" -mindepth 1 | wc -l)" = 1 ] || fail "install left extra files: $(ls -A "$root/out")"
chroot "$root" "${emulator[@]}" /out/drain-helper --version >/dev/null || fail "the installed copy does not run"
ok "install works in an empty chroot (mode 755, identical bytes)"

# As the init container runs it: a non-root numeric user writing into a shared emptyDir.
mkdir -m 1777 "$root/shared"
chroot --userspec=65532:65532 "$root" "${emulator[@]}" /drain-helper install /shared || fail "install as 65532 fails"
[ "$(stat -c %u:%a "$root/shared/drain-helper")" = 65532:755 ] || fail "install as 65532: $(stat -c %u:%a "$root/shared/drain-helper")"
ok "install works as user 65532"

# prestop without /proc: logs to its own stderr and finishes.
log=$(chroot "$root" "${emulator[@]}" /drain-helper prestop --delay 0 2>&1) || fail "prestop --delay 0 fails in an empty chroot: $log"
case "$log" in
*"drain-helper prestop: done"*) ok "prestop runs in an empty chroot" ;;
*) fail "prestop in an empty chroot logged: $log" ;;
esac

# The hold and the drain record in the size-trimmed build (its unwind tables discarded,
# scripts/helper-discard-unwind.ld): without /proc the hold falls back to the fixed delay, and
# the record goes after a message the container wrote itself.
printf 'user text\n' >"$root/shared/termination-log"
chmod 666 "$root/shared/termination-log"
log=$(chroot --userspec=65532:65532 "$root" "${emulator[@]}" /drain-helper prestop --delay 1 --quiet 1 \
	--hold-max 3 --record /shared/termination-log --role app 2>&1) || fail "prestop with a hold and a record fails: $log"
record=$(sed -n 2p "$root/shared/termination-log")
case "$(sed -n 1p "$root/shared/termination-log")|$record" in
'user text|{"v":1,"role":"app",'*'"why":"fixed"'*) ok "a hold without /proc is the fixed delay, and its drain record follows the user's text" ;;
*) fail "the termination message after prestop: $(cat "$root/shared/termination-log"); log: $log" ;;
esac
echo "check-helper: all checks passed for $bin"
