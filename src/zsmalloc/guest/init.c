/*
 * /init of a zsmalloc guest: load zram, run one workload on /dev/zram0, report, power off.
 *
 * Part of the zsmalloc package (zsmalloc/guest/): the host writes this program, the
 * modules and the workload into an initramfs (guest/initramfs.py), boots a distribution
 * kernel with it in QEMU (guest/qemu.py) and reads what it printed on the second serial
 * port (guest/program.py).  It is the whole user space: no shell, no modprobe, so it
 * mounts /proc, /sys and /dev itself and loads /lib/modules/NN-name.ko in file-name
 * order with finit_module(2).  Built with `cc -static -O2`.
 *
 * /data/ops.txt, one item a line ('#' starts a comment):
 *   algo NAME            comp_algorithm, before disksize
 *   param STRING         algorithm_params, before disksize (the kernel must have it)
 *   disksize BYTES       then the device is set up and the ops start
 *   w SLOT IDX           write page IDX of /data/pages.bin (4 KiB pages) to SLOT (O_DIRECT)
 *   d SLOT               BLKDISCARD the slot's 4 KiB
 *   c                    write 1 to compact
 *   r SLOT               read the slot back; compare with what this program last wrote
 *                        there (zeros when nothing or after a discard or a refused write)
 *   l BYTES              write BYTES to mem_limit (-1: mem_used_total + 4096, resolved here)
 *   x                    write 0 to mem_used_max
 *   p N                  two processes at once, each N random writes (and one discard in
 *                        eight) of pages.bin's pages to its own half of the slots: calls
 *                        into one pool from two tasks (two CPUs with -smp 2); the slots'
 *                        contents are forgotten (a later r of them is not meaningful)
 *   z                    write 2 to /proc/sys/vm/drop_caches: the slab shrinkers run, zsmalloc's
 *                        pool shrinker among them (it compacts the pool)
 *   kprobe DEF           (before disksize) append DEF to tracefs kprobe_events: the event
 *                        definitions of zsmalloc.zs.record, so the guest records zsmalloc's
 *                        calls exactly as `zsmalloc record` would
 *   kprobe? DEF          the same, for a function the kernel may have inlined: a definition
 *                        the kernel refuses is left out ("# kprobe-skipped DEF")
 *   trace on             (before disksize) a large ring buffer, the global trace clock, the
 *                        zsmalloc_rec events enabled; from then on a trace_marker line
 *                        "zsrec op N" follows the setup (N = 0) and each operation N
 * Output on /dev/ttyS1 (raw), line by line:
 *   # key value          facts: uname, attrs (the device's sysfs files), comp_algorithm ...
 *   i C1 .. C9           mm_stat after setup
 *   the op, then         e ERRNO (a write that failed), v 1|0 (read matched), L BYTES (limit)
 *   m C1 .. C9           mm_stat after the op
 *   o C1 .. C4           io_stat after the op
 *   t NAME HEX           at the end, the stat files as text (hex of their bytes)
 *   k LINE               with "trace on", at the end: the ring buffer's text (tracefs trace),
 *   K LINE               kprobe_profile (hits, misses per event) and
 *   S LINE               per_cpu/cpu0/stats (overruns, dropped events), line by line
 *   # end ops=N          the last line; then the guest powers off
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/reboot.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define SYSDIR "/sys/block/zram0"
#define DEVICE "/dev/zram0"
#define TRACEFS "/sys/kernel/tracing"

static FILE *out;

static void finish(int code)
{
	fprintf(out, "# end status=%d\n", code);
	fflush(out);
	sync();
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	_exit(code); /* not reached: init must not exit */
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(out, "# error ");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fprintf(out, "\n");
	finish(2);
}

static int attr_read(const char *name, char *buf, size_t len)
{
	char path[256];
	snprintf(path, sizeof path, SYSDIR "/%s", name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = 0;
	return (int)n;
}

static void attr_write(const char *name, const char *val)
{
	char path[256];
	snprintf(path, sizeof path, SYSDIR "/%s", name);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	ssize_t n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val))
		fail("write '%s' to %s: %s", val, path, n < 0 ? strerror(errno) : "short");
	close(fd);
}

static int stat_row(const char *name, unsigned long long *cols, int max)
{
	char buf[1024];
	if (attr_read(name, buf, sizeof buf) < 0)
		fail("read %s: %s", name, strerror(errno));
	int n = 0;
	char *p = buf;
	while (n < max) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			break;
		cols[n++] = v;
		p = end;
	}
	return n;
}

static void print_row(char tag, const char *name)
{
	unsigned long long cols[16];
	int n = stat_row(name, cols, 16);
	fputc(tag, out);
	for (int i = 0; i < n; i++)
		fprintf(out, " %llu", cols[i]);
	fputc('\n', out);
}

static void print_text(const char *name)
{
	char buf[4096];
	int n = attr_read(name, buf, sizeof buf);
	if (n < 0)
		return;
	fprintf(out, "t %s ", name);
	for (int i = 0; i < n; i++)
		fprintf(out, "%02x", (unsigned char)buf[i]);
	fputc('\n', out);
}

static void tracefs_write(const char *name, const char *val, int append)
{
	char path[256];
	snprintf(path, sizeof path, TRACEFS "/%s", name);
	int fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	ssize_t n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val))
		fail("write '%s' to %s: %s", val, path, n < 0 ? strerror(errno) : "short");
	close(fd);
}

/* A tracefs file, line by line, each line after TAG and a space. */
static void dump_tracefs(char tag, const char *name)
{
	char path[256], line[4096];
	snprintf(path, sizeof path, TRACEFS "/%s", name);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(out, "# error open %s: %s\n", path, strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		fprintf(out, "%c %s\n", tag, line);
	}
	fclose(f);
}

static int tracing;

static void mark(long long n)
{
	char buf[64];
	if (!tracing)
		return;
	snprintf(buf, sizeof buf, "zsrec op %lld\n", n);
	tracefs_write("trace_marker", buf, 1);
}

/* One of the two processes of "p N": N writes or discards in slots [base, base + n). */
static void parallel_child(int fd, unsigned char *io, const unsigned char *pages,
			   long long npages, long long base, long long n, long long count,
			   unsigned seed)
{
	for (long long i = 0; i < count; i++) {
		seed = seed * 1103515245u + 12345u;
		long long slot = base + (seed >> 8) % (unsigned long long)n;
		if ((seed & 7) == 0) {
			uint64_t range[2] = {(uint64_t)slot * PAGE, PAGE};
			ioctl(fd, BLKDISCARD, range);
		} else if (npages) {
			memcpy(io, pages + ((seed >> 4) % (unsigned long long)npages) * PAGE, PAGE);
			(void)!pwrite(fd, io, PAGE, slot * PAGE); /* EIO over mem_limit: fine */
		}
	}
	_exit(0);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of a directory's entries, sorted (skipping . and ..); count in *n. */
static char **list_dir(const char *dir, int *n)
{
	static char *names[512];
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return names;
	struct dirent *e;
	while ((e = readdir(d)) && *n < 512)
		if (e->d_name[0] != '.')
			names[(*n)++] = strdup(e->d_name);
	closedir(d);
	qsort(names, *n, sizeof *names, cmp_name);
	return names;
}

static void load_modules(void)
{
	int n;
	char **names = list_dir("/lib/modules", &n);
	for (int i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof path, "/lib/modules/%s", names[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST))
			fprintf(out, "# insmod %s failed: %s\n", names[i], strerror(errno));
		else
			fprintf(out, "# insmod %s\n", names[i]);
		if (fd >= 0)
			close(fd);
	}
}

static void open_output(void)
{
	int fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	struct termios tio;
	if (tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(fd, TCSANOW, &tio);
	}
	out = fdopen(fd, "w");
	static char buf[1 << 16];
	setvbuf(out, buf, _IOFBF, sizeof buf);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
	return s;
}

int main(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	open_output();

	struct utsname un;
	uname(&un);
	fprintf(out, "# uname %s\n", un.release);
	load_modules();
	struct stat st;
	for (int i = 0; i < 100 && stat(DEVICE, &st) != 0; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (stat(SYSDIR "/initstate", &st) != 0)
		fail("no " SYSDIR " after loading the modules");
	int nattr;
	char **attrs = list_dir(SYSDIR, &nattr);
	fprintf(out, "# attrs");
	for (int i = 0; i < nattr; i++)
		fprintf(out, " %s", attrs[i]);
	fprintf(out, "\n");
	char buf[4096];
	if (attr_read("comp_algorithm", buf, sizeof buf) >= 0)
		fprintf(out, "# comp_algorithm_default %s", buf);

	FILE *ops = fopen("/data/ops.txt", "r");
	int pfd = open("/data/pages.bin", O_RDONLY);
	if (!ops || pfd < 0)
		fail("no /data/ops.txt or /data/pages.bin");
	if (fstat(pfd, &st) < 0 || st.st_size % PAGE)
		fail("pages.bin is not whole pages");
	long long npages = st.st_size / PAGE;
	const unsigned char *pages = npages ? mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, pfd, 0)
					    : NULL;
	if (npages && pages == MAP_FAILED)
		fail("mmap pages.bin: %s", strerror(errno));

	unsigned char *io = NULL, *zero = calloc(1, PAGE);
	if (posix_memalign((void **)&io, PAGE, PAGE) || !zero)
		fail("out of memory");
	char line[4096];
	unsigned long long disksize = 0;
	long long nslots = 0, nops = 0, *held = NULL; /* slot -> page index + 1, 0: zeros */
	int fd = -1;
	while (fgets(line, sizeof line, ops)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		if (!strncmp(s, "algo ", 5)) {
			attr_write("comp_algorithm", trim(s + 5));
			continue;
		}
		if (!strncmp(s, "param ", 6)) {
			attr_write("algorithm_params", trim(s + 6));
			fprintf(out, "# param %s\n", trim(s + 6));
			continue;
		}
		if (!strncmp(s, "kprobe ", 7) || !strncmp(s, "kprobe? ", 8)) {
			int optional = s[6] == '?';
			char *def = trim(s + (optional ? 8 : 7));
			if (stat(TRACEFS "/kprobe_events", &st) != 0 &&
			    mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0)
				fail("mount tracefs: %s", strerror(errno));
			snprintf(buf, sizeof buf, "%s\n", def);
			if (optional) {
				int kfd = open(TRACEFS "/kprobe_events", O_WRONLY | O_APPEND);
				if (kfd < 0 || write(kfd, buf, strlen(buf)) != (ssize_t)strlen(buf))
					fprintf(out, "# kprobe-skipped %s\n", def);
				if (kfd >= 0)
					close(kfd);
			} else {
				tracefs_write("kprobe_events", buf, 1);
			}
			continue;
		}
		if (!strcmp(s, "trace on")) {
			tracefs_write("buffer_size_kb", "65536", 0);
			tracefs_write("trace_clock", "global", 0);
			tracefs_write("events/zsmalloc_rec/enable", "1", 0);
			tracefs_write("tracing_on", "1", 0);
			tracing = 1;
			fprintf(out, "# tracing on\n");
			continue;
		}
		if (!strncmp(s, "disksize ", 9)) {
			disksize = strtoull(s + 9, NULL, 10);
			attr_write("disksize", s + 9);
			if (attr_read("comp_algorithm", buf, sizeof buf) >= 0)
				fprintf(out, "# comp_algorithm %s", buf);
			fprintf(out, "# disksize %llu\n", disksize);
			nslots = disksize / PAGE;
			held = calloc(nslots ? nslots : 1, sizeof *held);
			fd = open(DEVICE, O_RDWR | O_DIRECT);
			if (fd < 0 || !held)
				fail("open " DEVICE ": %s", strerror(errno));
			mark(0);
			print_row('i', "mm_stat");
			continue;
		}
		if (fd < 0)
			fail("an op before disksize: %s", s);
		long long slot = 0, idx = 0;
		char op = s[0];
		fprintf(out, "%s\n", s);
		if (op == 'w' && sscanf(s + 1, "%lld %lld", &slot, &idx) == 2 && slot >= 0 &&
		    slot < nslots && idx >= 0 && idx < npages) {
			memcpy(io, pages + idx * PAGE, PAGE);
			if (pwrite(fd, io, PAGE, slot * PAGE) != PAGE)
				fprintf(out, "e %d\n", errno);
			else
				held[slot] = idx + 1;
		} else if (op == 'd' && sscanf(s + 1, "%lld", &slot) == 1 && slot >= 0 &&
			   slot < nslots) {
			uint64_t range[2] = {(uint64_t)slot * PAGE, PAGE};
			if (ioctl(fd, BLKDISCARD, range) < 0)
				fail("discard slot %lld: %s", slot, strerror(errno));
			held[slot] = 0;
		} else if (op == 'r' && sscanf(s + 1, "%lld", &slot) == 1 && slot >= 0 &&
			   slot < nslots) {
			if (pread(fd, io, PAGE, slot * PAGE) != PAGE)
				fail("read slot %lld: %s", slot, strerror(errno));
			const unsigned char *want = held[slot] ? pages + (held[slot] - 1) * PAGE : zero;
			fprintf(out, "v %d\n", memcmp(io, want, PAGE) == 0);
		} else if (op == 'c' && !s[1]) {
			attr_write("compact", "1");
		} else if (op == 'l' && sscanf(s + 1, "%lld", &idx) == 1) {
			if (idx < 0) {
				unsigned long long cols[16];
				stat_row("mm_stat", cols, 16);
				idx = (long long)cols[2] + PAGE;
			}
			snprintf(buf, sizeof buf, "%lld", idx);
			attr_write("mem_limit", buf);
			fprintf(out, "L %lld\n", idx);
		} else if (op == 'x' && !s[1]) {
			attr_write("mem_used_max", "0");
		} else if (op == 'p' && sscanf(s + 1, "%lld", &idx) == 1 && idx > 0 && nslots >= 2) {
			pid_t kids[2];
			for (int c = 0; c < 2; c++) {
				kids[c] = fork();
				if (kids[c] == 0) {
					int cfd = open(DEVICE, O_RDWR | O_DIRECT);
					if (cfd < 0)
						_exit(1);
					parallel_child(cfd, io, pages, npages, c * (nslots / 2),
						       nslots / 2, idx, 1234u + 77u * c + (unsigned)nops);
				}
			}
			for (int c = 0; c < 2; c++) {
				int status = 0;
				if (kids[c] < 0 || waitpid(kids[c], &status, 0) < 0 || status != 0)
					fail("parallel writer %d failed", c);
			}
			for (long long k = 0; k < nslots; k++)
				held[k] = 0;
		} else if (op == 'z' && !s[1]) {
			int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
			if (dc < 0 || write(dc, "2", 1) != 1)
				fail("drop_caches: %s", strerror(errno));
			close(dc);
		} else {
			fail("cannot do '%s'", s);
		}
		nops++;
		mark(nops);
		print_row('m', "mm_stat");
		print_row('o', "io_stat");
	}
	const char *texts[] = {"mm_stat", "io_stat", "debug_stat", "bd_stat",
			       "comp_algorithm", "disksize", "initstate"};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
		print_text(texts[i]);
	if (tracing) {
		tracefs_write("tracing_on", "0", 0);
		dump_tracefs('k', "trace");
		dump_tracefs('K', "kprobe_profile");
		dump_tracefs('S', "per_cpu/cpu0/stats");
	}
	fprintf(out, "# ops %lld\n", nops);
	finish(0);
	return 0;
}
