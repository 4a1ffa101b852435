/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <linux/kernel.h>
#define __ffs(x) ((unsigned long)__builtin_ctzl(x))
#define __fls(x) ((unsigned long)(63 - __builtin_clzl(x)))
