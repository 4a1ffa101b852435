/*
 * The kernel's compressors as zram calls them, one page per call, for ctypes
 * (tools/kernel-lib/record.py).  Built by build.sh from a kernel source tree.
 *
 * Each function returns the compressed length, or < 0 when the kernel would fail.
 * The destination buffer is two pages, as zcomp's is, so every call takes the
 * kernel's noLimit/unbounded paths.
 */
#include <linux/kernel.h>
#include <linux/lzo.h>
#include <linux/lz4.h>
#include <linux/zlib.h>
#include <stdlib.h>

static unsigned char workmem[1 << 20]; /* >= LZO1X_1_MEM_COMPRESS, LZ4HC_MEM_COMPRESS */

int k_lzo(const unsigned char *src, size_t n, unsigned char *dst, int rle)
{
	size_t out = 2 * n;
	int ret = rle ? lzorle1x_1_compress(src, n, dst, &out, workmem)
		      : lzo1x_1_compress(src, n, dst, &out, workmem);
	return ret ? -1 : (int)out;
}

int k_lz4(const char *src, int n, char *dst, int acceleration)
{
	return LZ4_compress_fast(src, dst, n, 2 * n, acceleration, workmem);
}

int k_lz4hc(const char *src, int n, char *dst, int level)
{
	return LZ4_compress_HC(src, dst, n, 2 * n, level, workmem);
}

/* backend_deflate.c: one workspace for every call, deflateReset per page */
int k_deflate(const unsigned char *src, int n, unsigned char *dst, int level, int winbits)
{
	static struct z_stream_s s;
	static void *workspace;

	if (!workspace)
		workspace = calloc(1, zlib_deflate_workspacesize(MAX_WBITS, MAX_MEM_LEVEL));
	s.workspace = workspace;
	if (zlib_deflateInit2(&s, level, Z_DEFLATED, winbits, MAX_MEM_LEVEL,
			      Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	s.next_in = src;
	s.avail_in = n;
	s.next_out = dst;
	s.avail_out = 2 * n;
	if (zlib_deflate(&s, Z_FINISH) != Z_STREAM_END)
		return -2;
	return (int)s.total_out;
}
