#!/usr/bin/env bash
# Build the kernel's own compressors (lib/lzo, lib/lz4, lib/zlib_deflate of a kernel
# source tree) as a user-space shared library, x86-64 flavour (the CTZ64 and 64-bit
# paths the kernel builds there): the oracle for page sizes no kernel we can boot has.
#
#   tools/kernel-lib/build.sh KERNEL_SRC [OUT.so]
#
# KERNEL_SRC: an unpacked tree, e.g. from Debian's linux-source-7.2 package:
#   apt-get download linux-source-7.2 && dpkg-deb --fsys-tarfile linux-source-7.2_*.deb |
#   tar -xO --wildcards '*.tar.xz' | tar -xJ
# Only the headers below and the five .c files are used; include/ here stands in for
# the few kernel headers they need beyond those.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$1" && pwd)
out=${2:-$here/build/libkernel-lib.so}
build=$(dirname "$out")
mkdir -p "$build/include/linux"
for h in lzo.h lz4.h zlib.h zconf.h zutil.h; do cp "$src/include/linux/$h" "$build/include/linux/"; done
gcc -O2 -shared -fPIC -w -I"$here/include" -I"$build/include" \
    -DCONFIG_64BIT -DCONFIG_X86_64 -DCONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS -D__LITTLE_ENDIAN \
    -o "$out" "$here/wrap.c" \
    "$src/lib/lzo/lzo1x_compress.c" "$src/lib/lz4/lz4_compress.c" \
    "$src/lib/lz4/lz4hc_compress.c" "$src/lib/zlib_deflate/deflate.c" \
    "$src/lib/zlib_deflate/deftree.c"
echo "$out"
