/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;
typedef int8_t s8; typedef int16_t s16; typedef int32_t s32; typedef int64_t s64;
