/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <linux/kernel.h>
