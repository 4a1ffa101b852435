/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <linux/types.h>
#include <string.h>
#define likely(x) __builtin_expect(!!(x),1)
#define unlikely(x) __builtin_expect(!!(x),0)
#define noinline __attribute__((noinline))
#define __always_inline inline __attribute__((always_inline))
#define BUILD_BUG_ON(x)
#define BUG_ON(x)
#define min_t(t,a,b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define min(a,b) ((a) < (b) ? (a) : (b))
#define max(a,b) ((a) > (b) ? (a) : (b))
#define ALIGN(x,a) (((x)+(a)-1)&~((a)-1))
#define IS_ALIGNED(x,a) (((x)&((a)-1))==0)
#define EXPORT_SYMBOL(x)
#define EXPORT_SYMBOL_GPL(x)
#define MODULE_LICENSE(x)
#define MODULE_DESCRIPTION(x)
#define KB (1<<10)
#define static_assert(...)
#define PAGE_SIZE 4096
