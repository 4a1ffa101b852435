/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <linux/types.h>
static inline u32 bitrev32(u32 x){u32 r=0; for(int i=0;i<32;i++){r=(r<<1)|(x&1); x>>=1;} return r;}
