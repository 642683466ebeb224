#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages (dpkg-buildpackage -b -uc -us) from a copy of
# the source tree, checks what they hold, and unpacks them with dpkg -x so
# that the installed-copy tests can run against them:
#   OUT/src      the copy the packages were built in
#   OUT/build    its CMake build tree (a link to OUT/src/obj-<triplet>)
#   OUT/*.deb    libweft0, libweft-dev (and libweft0-dbgsym)
#   OUT/root     libweft0 and libweft-dev unpacked: OUT/root/usr is a prefix
# Usage: run.sh OUT.  Prints one line per check and a closing
# "package: N passed, N failed".
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
suite=package
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Build in a copy, so that the source tree gets no debian/tmp, obj-*, or
# .debs beside it.
rm -rf "$out" && mkdir -p "$out/src" || exit 1
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$out/src" -xf -
(cd "$out/src" && dpkg-buildpackage -b -uc -us -jauto) >"$out/build.log" 2>&1
rc=$?
problems=()
if [ "$rc" -ne 0 ]; then
    problems+=("dpkg-buildpackage exited with $rc; the log is $out/build.log, which ends:")
    while IFS= read -r l; do problems+=("  $l"); done < <(grep -v '^\[' "$out/build.log" | tail -14)
    grep -q '^dpkg-gensymbols: error' "$out/build.log" &&
        problems+=("libweft.so's exports differ from debian/libweft0.symbols: list each new symbol" \
            "there with the version that first ships it (the diff above has them)")
else
    # The tools' own warnings count as failures (compilers' are errors anyway).
    mapfile -t problems < <(grep -E '^(dpkg-[a-z]+|dh_[a-z_]+|dh): warning' "$out/build.log" | tail -15)
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$(cd "$out/src" && dpkg-parsechangelog -SVersion)
cmake_version=$(sed -nE 's/^project\(weft VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")
ln -s "src/obj-$triplet" "$out/build"
lib=$out/libweft0_${version}_$arch.deb
dev=$out/libweft-dev_${version}_$arch.deb
for d in "$lib" "$dev"; do [ -f "$d" ] || problems+=("no $(basename "$d")"); done
report "dpkg_buildpackage_builds_libweft0_and_libweft_dev ($version)" $((rc != 0 || ${#problems[@]} != 0)) \
    "${problems[@]}"
[ -f "$lib" ] && [ -f "$dev" ] || finish

# What each package holds, and nothing else.
contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort; }
expect_lib="/usr/lib/$triplet/libweft.so.0
/usr/lib/$triplet/libweft.so.$cmake_version
/usr/share/doc/libweft0/changelog.Debian.gz
/usr/share/doc/libweft0/copyright
/usr/share/gdb/auto-load/usr/lib/$triplet/libweft.so.$cmake_version-gdb.py"
expect_dev="/usr/include/weft/io.h
/usr/include/weft/ops.h
/usr/include/weft/stream.h
/usr/include/weft/sync.h
/usr/include/weft/version.h
/usr/include/weft/weft.h
/usr/lib/$triplet/cmake/weft/weftConfig.cmake
/usr/lib/$triplet/cmake/weft/weftConfigVersion.cmake
/usr/lib/$triplet/cmake/weft/weftTargets-none.cmake
/usr/lib/$triplet/cmake/weft/weftTargets.cmake
/usr/lib/$triplet/libweft.a
/usr/lib/$triplet/libweft.so
/usr/lib/$triplet/pkgconfig/weft.pc
/usr/share/doc/libweft-dev/changelog.Debian.gz
/usr/share/doc/libweft-dev/copyright
/usr/share/weft/gdb/weft.py"
for p in lib dev; do
    deb=$lib expect=$expect_lib
    [ $p = dev ] && deb=$dev expect=$expect_dev
    have=$(contents "$deb")
    problems=()
    while read -r f; do [ -n "$f" ] && problems+=("unexpected: $f"); done < <(comm -23 <(echo "$have") <(echo "$expect"))
    while read -r f; do [ -n "$f" ] && problems+=("missing: $f"); done < <(comm -13 <(echo "$have") <(echo "$expect"))
    copyright=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/share/doc/$(dpkg-deb -f "$deb" Package)/copyright")
    grep -qx 'License: MIT' <<<"$copyright" || problems+=("its copyright file does not say License: MIT")
    report "$(dpkg-deb -f "$deb" Package)_contents" ${#problems[@]} "${problems[@]}"
done

# Unpacked side by side, as installing both would place them.
problems=()
mkdir -p "$out/root"
for d in "$lib" "$dev"; do dpkg -x "$d" "$out/root" || problems+=("dpkg -x $(basename "$d") failed"); done
[ -f "$out/root/usr/lib/$triplet/pkgconfig/weft.pc" ] || problems+=("no weft.pc under $out/root")
report unpacked_with_dpkg_x ${#problems[@]} "${problems[@]}"

# The upstream version is the library's, and the runtime package is named
# for the soname.
problems=()
[ "${version%-*}" = "$cmake_version" ] ||
    problems+=("debian/changelog says $version, CMakeLists.txt says $cmake_version")
soname=$(readelf -dW "$out/root/usr/lib/$triplet/libweft.so.$cmake_version" 2>/dev/null |
    sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[ "libweft${soname#libweft.so.}" = libweft0 ] && [ -n "$soname" ] ||
    problems+=("the library's soname is '$soname', its package libweft0")
report versions_agree ${#problems[@]} "${problems[@]}"

finish
