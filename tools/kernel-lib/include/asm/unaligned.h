/* Stand-in for the kernel header of this name: just what lib/lzo, lib/lz4 and
 * lib/zlib_deflate need to build as a user-space library (tools/kernel-lib). */
#pragma once
#include <linux/types.h>
#include <string.h>
#define get_unaligned(p) ({ __typeof__(*(p)) __v; memcpy(&__v, (p), sizeof(__v)); __v; })
#define put_unaligned(v,p) do { __typeof__(*(p)) __v = (v); memcpy((p), &__v, sizeof(__v)); } while (0)
static inline u32 get_unaligned_le32(const void *p){u32 v; memcpy(&v,p,4); return v;}
static inline u16 get_unaligned_le16(const void *p){u16 v; memcpy(&v,p,2); return v;}
static inline void put_unaligned_le32(u32 v, void *p){memcpy(p,&v,4);}
static inline void put_unaligned_le16(u16 v, void *p){memcpy(p,&v,2);}
