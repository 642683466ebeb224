#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The binary interface of a built libweft.so: it exports exactly the
# functions the public headers declare WEFT_API (all named weft_*, nothing
# from weft's internals or the libraries linked into it), under the soname
# libweft.so.0, with a non-executable stack.
# Usage: exports.sh LIBWEFT_SO HEADER_DIR (the directory of weft.h).
# Prints one line per check and a closing "abi: N passed, N failed".
set -u
lib=$1
headers=$2
# The soname changes only with an incompatible change to the ABI, and then
# together with the Debian package's name (libweft0) and its symbols file.
soname=libweft.so.0
suite=abi
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if [ ! -f "$lib" ] || ! compgen -G "$headers/*.h" >/dev/null; then
    echo "usage: $0 LIBWEFT_SO HEADER_DIR (no $lib or no headers in $headers)" >&2
    echo "abi: 0 passed, 1 failed"
    exit 1
fi

# What the library exports: every defined dynamic symbol, of any type.
mapfile -t exported < <(nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | sort -u)
# What the headers declare: the name before the "(" of each WEFT_API
# declaration (which may span lines), comments and directives left out.
mapfile -t declared < <(for h in "$headers"/*.h; do cc -fpreprocessed -dD -E -P -x c "$h" 2>/dev/null; done |
    grep -v '^[[:space:]]*#' | tr '\n' ' ' | grep -oE 'WEFT_API[^;(]*\(' |
    sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*) *\($/\1/' | sort -u)

problems=()
for s in "${exported[@]}"; do
    [[ $s =~ ^weft_[a-z0-9] ]] || problems+=("exported: $s")
done
report only_weft_names_exported ${#problems[@]} "${problems[@]}"

problems=()
[ ${#declared[@]} -gt 0 ] || problems+=("no WEFT_API declarations found in $headers")
while read -r s; do problems+=("exported but not declared WEFT_API in a public header: $s"); done \
    < <(comm -23 <(printf '%s\n' "${exported[@]}") <(printf '%s\n' "${declared[@]}"))
while read -r s; do problems+=("declared WEFT_API but not exported: $s"); done \
    < <(comm -13 <(printf '%s\n' "${exported[@]}") <(printf '%s\n' "${declared[@]}"))
report "exports_are_the_declared_api (${#exported[@]} functions)" ${#problems[@]} "${problems[@]}"

have=$(readelf -dW "$lib" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[ "$have" = "$soname" ]
report soname_is_$soname $? "SONAME is '$have'"

stack=$(readelf -lW "$lib" | awk '$1 == "GNU_STACK" { print $(NF - 1) }')
[ "$stack" = RW ]
report stack_not_executable $? "GNU_STACK flags are '${stack:-missing}'"

finish
