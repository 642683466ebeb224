#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prepares what cross-building weft for aarch64 and running its tests under
# qemu-user need, on Debian 12 (x86_64):
#
#   - the host tools: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
#     qemu-user, cmake, ninja-build (installed with apt-get if missing);
#   - a sysroot, build/sysroot-aarch64 unless WEFT_AARCH64_SYSROOT says
#     otherwise, holding Debian's arm64 libcriterion-dev, libcriterion3,
#     libatomic-ops-dev, liburing-dev, liburing2 and the runtime closure of libcriterion3 (libc6
#     included, so that `qemu-aarch64 -L <sysroot>` finds the loader).
#
# The arm64 packages are never installed: on Debian 12 libcriterion-dev:arm64
# and libatomic-ops-dev:arm64 are not co-installable with their amd64
# versions, and installing them would remove those.  Their .debs are
# downloaded into build/aarch64-debs and unpacked with dpkg-deb -x.
#
# Idempotent: a stamp file in the sysroot records what it was made from; when
# it matches, nothing is downloaded or unpacked.  Root is needed only for
# what it changes on the system (apt-get install, dpkg --add-architecture,
# apt-get update); without root the script says which command to run.
#
# Prints the sysroot's path as its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYSROOT=${WEFT_AARCH64_SYSROOT:-$ROOT/build/sysroot-aarch64}
DEBS=$ROOT/build/aarch64-debs
STAMP=$SYSROOT/.weft-sysroot-stamp

# What the sysroot is made of.  Changing this list remakes the sysroot.
TOP_PACKAGES=(libcriterion-dev libcriterion3 libatomic-ops-dev liburing-dev liburing2)
CLOSURE_OF=libcriterion3
STAMP_TEXT="weft aarch64 sysroot v1: ${TOP_PACKAGES[*]} + runtime closure of $CLOSURE_OF"

say() { printf 'aarch64-sysroot: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# ---- host tools ----------------------------------------------------------------
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
if [ ${#need[@]} -gt 0 ]; then
    if ! is_root; then
        die "missing host packages; as root run: apt-get update && apt-get install -y ${need[*]}"
    fi
    say "installing host packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ---- the sysroot, if it is already made ----------------------------------------
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ]; then
    say "sysroot up to date: $SYSROOT"
    echo "$SYSROOT"
    exit 0
fi

# ---- apt knows arm64 ---------------------------------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if ! is_root; then
        die "dpkg does not know arm64; as root run: dpkg --add-architecture arm64 && apt-get update"
    fi
    say "adding dpkg architecture arm64"
    dpkg --add-architecture arm64
    say "apt-get update"
    apt-get update -qq
fi
if ! apt-cache show --no-all-versions "$CLOSURE_OF:arm64" >/dev/null 2>&1; then
    if ! is_root; then
        die "apt has no arm64 package lists; as root run: apt-get update"
    fi
    say "apt-get update (no arm64 package lists yet)"
    apt-get update -qq
    apt-cache show --no-all-versions "$CLOSURE_OF:arm64" >/dev/null 2>&1 ||
        die "apt still has no $CLOSURE_OF:arm64 after apt-get update"
fi

# ---- the packages: the top ones and libcriterion3's runtime closure ------------
# apt-cache depends lists every package once unindented; <name> is a virtual
# package, and names without :arm64 are the host's (none are needed here).
mapfile -t closure < <(
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$CLOSURE_OF:arm64" |
        grep -E '^[^ <].*:arm64$' | sed 's/:arm64$//')
mapfile -t packages < <(printf '%s\n' "${TOP_PACKAGES[@]}" "${closure[@]}" | sort -u)
say "${#packages[@]} arm64 packages: ${packages[*]}"

# ---- download what is not here yet ---------------------------------------------
mkdir -p "$DEBS"
# One apt-cache call for all the versions: each call costs seconds.
declare -A version
while read -r p v; do
    version[$p]=$v
done < <(apt-cache show --no-all-versions "${packages[@]/%/:arm64}" |
    awk '/^Package: /{p=$2} /^Version: /{print p, $2}')
want=()
files=()
for p in "${packages[@]}"; do
    v=${version[$p]:-}
    [ -n "$v" ] || die "no version of $p:arm64 in apt's lists"
    # apt-get download names files with the epoch's colon as %3a.
    f="$DEBS/${p}_${v//:/%3a}_arm64.deb"
    files+=("$f")
    [ -s "$f" ] || want+=("$p:arm64=$v")
done
if [ ${#want[@]} -gt 0 ]; then
    say "downloading ${#want[@]} .debs into $DEBS"
    # As root, apt downloads as _apt, which may not write into the build
    # tree: tell it to stay root (and not warn about it).
    sandbox=()
    is_root && sandbox=(-o APT::Sandbox::User=root)
    (cd "$DEBS" && apt-get download -q "${sandbox[@]}" "${want[@]}" >/dev/null)
else
    say "all .debs already in $DEBS"
fi
for f in "${files[@]}"; do
    [ -s "$f" ] || die "download did not produce $f"
done

# ---- unpack into a fresh directory, then move it into place --------------------
tmp="$SYSROOT.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
say "unpacking ${#files[@]} .debs"
for f in "${files[@]}"; do
    dpkg-deb -x "$f" "$tmp"
done

# Absolute symlinks (e.g. a .so pointing at /lib/aarch64-linux-gnu/...) would
# point out of the sysroot, at the host: make them relative.
while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    case $target in
    /*)
        rel=$(realpath -m --relative-to="$(dirname "$link")" "$tmp$target")
        ln -sfn "$rel" "$link"
        ;;
    esac
done < <(find "$tmp" -type l -print0)

[ -e "$tmp/lib/ld-linux-aarch64.so.1" ] || die "no lib/ld-linux-aarch64.so.1 in the unpacked sysroot"
[ -e "$tmp/usr/include/criterion/criterion.h" ] || die "no criterion/criterion.h in the unpacked sysroot"
[ -e "$tmp/usr/include/atomic_ops_stack.h" ] || die "no atomic_ops_stack.h in the unpacked sysroot"
[ -e "$tmp/usr/include/liburing.h" ] || die "no liburing.h in the unpacked sysroot"

echo "$STAMP_TEXT" >"$tmp/.weft-sysroot-stamp"
rm -rf "$SYSROOT"
mv "$tmp" "$SYSROOT"
trap - EXIT
say "sysroot ready: $SYSROOT"
echo "$SYSROOT"
