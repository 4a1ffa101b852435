/* zswap store-only workload of a guest (tools/zswap-guest): fill N anonymous pages from a
   file, page them out in address order with MADV_PAGEOUT (all at once, or STEP pages at a
   time), and print zswap's debugfs counters, the Zswap lines of /proc/meminfo and
   MemTotal before and after (after every step with STEP).

   Usage: zswaprun PAGES N [STEP]        (static: cc -static -O2 -o zswaprun zswaprun.c)

   Derived from guest-oracle's zswaprun.c (same output format; "# step K" blocks and the
   "meminfo MemTotal" line are additions). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define PAGE 4096

static void dump(const char *tag)
{
	DIR *d = opendir("/sys/kernel/debug/zswap");
	struct dirent *e;
	char path[512], buf[128];

	printf("# %s\n", tag);
	if (!d) {
		printf("no debugfs zswap\n");
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/sys/kernel/debug/zswap/%s", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f))
			printf("%s %s", e->d_name, buf);
		fclose(f);
	}
	closedir(d);
	FILE *m = fopen("/proc/meminfo", "r");
	while (m && fgets(buf, sizeof buf, m))
		if (!strncmp(buf, "Zswap", 5) || !strncmp(buf, "SwapFree", 8) ||
		    !strncmp(buf, "MemTotal", 8))
			printf("meminfo %s", buf);
	if (m)
		fclose(m);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long n = atol(argv[2]);
	long step = argc > 3 ? atol(argv[3]) : 0;
	size_t len = (size_t)n * PAGE;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
		if (r <= 0)
			break;
		got += r;
	}
	printf("# filled %zu bytes\n", got);
	dump("before");
	if (step <= 0) {
		if (madvise(p, len, MADV_PAGEOUT))
			perror("madvise");
	} else {
		char tag[64];
		for (long i = 0; i < n; i += step) {
			long k = i + step > n ? n - i : step;
			if (madvise(p + (size_t)i * PAGE, (size_t)k * PAGE, MADV_PAGEOUT))
				perror("madvise");
			snprintf(tag, sizeof tag, "step %ld", i + k);
			dump(tag);
		}
	}
	dump("after");
	printf("# end\n");
	fflush(stdout);
	return 0;
}
