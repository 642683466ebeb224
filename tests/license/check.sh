#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# weft is MIT-licensed, and says so everywhere it should: the LICENSE file,
# an SPDX line at the top of every tracked file (after a shebang), and the
# license named in README, weft.pc and the CMake package.
# Usage: check.sh [SOURCE_DIR].  Prints one line per check and a closing
# "license: N passed, N failed".
set -u
suite=license
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1

# Files that cannot carry a comment, or are the license texts themselves.
exempt() {
    case $1 in
    *.md | LICENSE) return 0 ;;           # documents; README names the license
    debian/changelog) return 0 ;;         # fixed format, no comments
    debian/copyright) return 0 ;;         # the license statement itself
    debian/source/format) return 0 ;;     # one line, read verbatim
    *.png) return 0 ;;                    # images (docs/), drawn by the bench script
    tests/fuzz/corpus/*) return 0 ;;      # fuzzer inputs: raw bytes, read verbatim
    esac
    return 1
}

# LICENSE: the MIT text, for the weft authors.
problems=()
if [ ! -f LICENSE ]; then
    problems+=("no LICENSE file")
else
    head -1 LICENSE | grep -qx 'MIT License' || problems+=("LICENSE does not start with 'MIT License'")
    grep -qE '^Copyright \(c\) [0-9, -]+ the weft authors$' LICENSE ||
        problems+=("LICENSE has no 'Copyright (c) YEAR the weft authors' line")
    grep -q '^Permission is hereby granted, free of charge, to any person obtaining a copy$' LICENSE ||
        problems+=("LICENSE is not the MIT permission text")
fi
report license_file ${#problems[@]} "${problems[@]}"

# Every tracked file but the exempt ones: an SPDX line first, or second
# after a shebang, in a comment style its language accepts.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files)
else
    mapfile -t files < <(find . -path ./build -prune -o -path ./.git -prune -o -type f -print | sed 's|^\./||' | sort)
fi
spdx='^(//|#|/\*) SPDX-License-Identifier: MIT( \*/)?$'
problems=()
checked=0
for f in "${files[@]}"; do
    [ -f "$f" ] || continue # deleted in the work tree, not yet committed
    exempt "$f" && continue
    checked=$((checked + 1))
    line=$(head -1 "$f")
    [[ $line == '#!'* ]] && line=$(sed -n 2p "$f")
    [[ $line =~ $spdx ]] || problems+=("$f: first line is '${line:0:60}'")
done
[ "$checked" -gt 0 ] || problems+=("no files found under $src")
report "spdx_line_in_every_file ($checked files)" ${#problems[@]} "${problems[@]}"

# The license named where users and tools look for it.
problems=()
grep -q '^## License' README.md && grep -q 'MIT' README.md || problems+=("README.md: no License section naming MIT")
grep -qx 'License: MIT' cmake/weft.pc.in || problems+=("cmake/weft.pc.in: no 'License: MIT' field")
grep -q 'set(weft_LICENSE "MIT")' cmake/weftConfig.cmake.in || problems+=("cmake/weftConfig.cmake.in: weft_LICENSE is not MIT")
if [ -d debian ]; then
    grep -qx 'License: MIT' debian/copyright || problems+=("debian/copyright: no 'License: MIT'")
fi
report license_named ${#problems[@]} "${problems[@]}"

finish
