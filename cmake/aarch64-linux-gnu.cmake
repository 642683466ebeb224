# SPDX-License-Identifier: MIT
# CMake toolchain file: cross-build weft for aarch64 Linux on Debian 12 with
# gcc-aarch64-linux-gnu, and run what it builds under qemu-user.
#
#   scripts/aarch64-sysroot.sh            # host tools and the arm64 sysroot
#   cmake -S . -B build/aarch64 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# The compiler's own sysroot (/usr/aarch64-linux-gnu, from
# libc6-dev-arm64-cross) supplies libc.  The arm64 libraries that package
# lacks (Criterion, libatomic_ops and what libcriterion.so needs at run
# time) come from WEFT_AARCH64_SYSROOT: Debian's arm64 .debs unpacked by
# scripts/aarch64-sysroot.sh, never installed.  That directory holds arm64's
# libc6 too, so `qemu-aarch64 -L <sysroot>` finds the dynamic loader there.
#
# The find_* calls below look only in the sysroot.  Debian's cross gcc does
# search the host's /usr/include after its own headers (multiarch: what is
# there is the same for every architecture), so check_include_file finds the
# host's valgrind/valgrind.h and WEFT_HAVE_VALGRIND is on.  That is harmless:
# the header supports arm64, its client requests are inline no-op
# instructions outside valgrind, and nothing links to valgrind.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# The sysroot: a cache variable, else the environment, else the script's
# default place.  Passed on to try_compile's inner projects as well.
if(NOT DEFINED WEFT_AARCH64_SYSROOT)
  if(DEFINED ENV{WEFT_AARCH64_SYSROOT})
    set(_weft_sysroot "$ENV{WEFT_AARCH64_SYSROOT}")
  else()
    get_filename_component(_weft_sysroot "${CMAKE_CURRENT_LIST_DIR}/../build/sysroot-aarch64" ABSOLUTE)
  endif()
  set(WEFT_AARCH64_SYSROOT "${_weft_sysroot}" CACHE PATH
      "arm64 libraries unpacked from Debian's .debs (scripts/aarch64-sysroot.sh)")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES WEFT_AARCH64_SYSROOT)
if(NOT EXISTS "${WEFT_AARCH64_SYSROOT}/usr/include/criterion/criterion.h")
  message(FATAL_ERROR "No arm64 sysroot at ${WEFT_AARCH64_SYSROOT}: run scripts/aarch64-sysroot.sh "
                      "or set WEFT_AARCH64_SYSROOT")
endif()

# Headers and libraries from the sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH "${WEFT_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# libcriterion.so needs libgit2, libnanomsg, libffi, ...: let the linker
# find them in the sysroot without linking them in.
set(_weft_rpath_link
    "-Wl,-rpath-link,${WEFT_AARCH64_SYSROOT}/lib/aarch64-linux-gnu:${WEFT_AARCH64_SYSROOT}/usr/lib/aarch64-linux-gnu")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_weft_rpath_link}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_weft_rpath_link}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_weft_rpath_link}")

# ctest and try_run run aarch64 programs through qemu-user, with the
# sysroot's loader and libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L "${WEFT_AARCH64_SYSROOT}")
