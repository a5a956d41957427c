"""The C helpers an exported testcase is built from.

Each helper is a piece of C text plus the helpers it calls; the exporter emits
only the ones a scenario needs (so ``-Wall -Wextra -Werror`` never sees an unused
static function) and always in the order of :data:`ORDER`.  The output protocol
(``KSMREPRO step=N ...`` lines) is described in ``ksmrepro/export/parse.py``.
"""

from __future__ import annotations

__all__ = ["ERRNO_NAMES", "HELPERS", "ORDER", "SIGNAL_NAMES", "needed"]

# errno names the testcase can print, one per value (EAGAIN == EWOULDBLOCK,
# EOPNOTSUPP == ENOTSUP, EDEADLK == EDEADLOCK on Linux: the first is printed).
ERRNO_NAMES = (
    "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF",
    "ECHILD", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "EBUSY", "EEXIST", "EXDEV", "ENODEV",
    "ENOTDIR", "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ETXTBSY", "EFBIG", "ENOSPC",
    "ESPIPE", "EROFS", "EMLINK", "EPIPE", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOSYS",
    "ENOTEMPTY", "ELOOP", "EOVERFLOW", "EOPNOTSUPP", "ETIMEDOUT", "EHWPOISON",
)

SIGNAL_NAMES = ("SIGSEGV", "SIGBUS", "SIGKILL", "SIGTERM", "SIGABRT", "SIGILL", "SIGFPE")


def _errno_switch() -> str:
    return "\n".join(f"\tcase {e}: return \"{e}\";" for e in ERRNO_NAMES)


def _signal_switch() -> str:
    return "\n".join(f"\tcase {s}: return \"{s}\";" for s in SIGNAL_NAMES)


# name -> (C text, helpers it needs)
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "say": ("""\
/*
 * Every result is one line "KSMREPRO step=N ...", written with a single
 * write(2) so that lines of different processes never interleave.
 */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n, m;

	n = snprintf(line, sizeof(line), "%sKSMREPRO ", LINE_PREFIX);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m > 0)
		n += m < (int)sizeof(line) - n - 1 ? m : (int)sizeof(line) - n - 2;
	line[n++] = '\\n';
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(3);
}
""", ()),
    "now_ns": ("""\
static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec - start.tv_sec) * 1000000000LL + (ts.tv_nsec - start.tv_nsec);
}
""", ()),
    "errno_name": (f"""\
static const char *errno_name(int e)
{{
	static char other[16];

	switch (e) {{
{_errno_switch()}
	}}
	snprintf(other, sizeof(other), "E%d", e);
	return other;
}}
""", ()),
    "signal_name": (f"""\
static const char *signal_name(int sig)
{{
	switch (sig) {{
{_signal_switch()}
	}}
	return "SIG?";
}}
""", ()),
    "knobs": ("""\
/*
 * sysfs knobs this testcase writes: their old values are saved before the
 * first write and written back at exit.  Only open/read/write/close here, so
 * that the SIGSEGV handler may call restore_knobs() too.
 */
static void save_knob(struct knob *k)
{
	char buf[sizeof(k->old)], *open_br, *close_br;
	int fd = open(k->path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\\0';
	buf[strcspn(buf, "\\n")] = '\\0';
	/* "always madvise [never]": the value in brackets is the one in use */
	open_br = strchr(buf, '[');
	close_br = open_br ? strchr(open_br, ']') : NULL;
	if (open_br && close_br) {
		*close_br = '\\0';
		memmove(buf, open_br + 1, strlen(open_br + 1) + 1);
	}
	memcpy(k->old, buf, strlen(buf) + 1);
	k->saved = 1;
}

static void restore_knobs(void)
{
	int i, fd;

	if (getpid() != main_pid)
		return;
	for (i = (int)(sizeof(knobs) / sizeof(knobs[0])) - 1; i >= 0; i--) {
		if (!knobs[i].saved)
			continue;
		fd = open(knobs[i].path, O_WRONLY);
		if (fd < 0)
			continue;
		if (write(fd, knobs[i].old, strlen(knobs[i].old)) < 0) {
			/* best effort: e.g. merge_across_nodes while pages are merged */
		}
		close(fd);
	}
}

static void save_knobs(void)
{
	size_t i;

	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		save_knob(&knobs[i]);
	atexit(restore_knobs);
}
""", ()),
    "write_file": ("""\
/* echo value > path: returns 0, or -1 with errno set (as the write failed) */
static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -1;
	n = write(fd, value, strlen(value));
	err = errno;
	close(fd);
	errno = err;
	return n < 0 ? -1 : 0;
}
""", ()),
    "die": ("""\
/* End the test after a failure (atexit() restores the knobs). */
static void die(void)
{
	exit(1);
}
""", ()),
    "die_multi": ("""\
/*
 * End the test after a failure.  A process other than main first hands main
 * a '!' on its baton pipe (main is waiting there: only one process runs at a
 * time); main exits, and PR_SET_PDEATHSIG takes the other processes with it.
 */
static void die(void)
{
	char bang = '!';

	if (self != P_main) {
		if (write(BATON_FD + 2 * P_main + 1, &bang, 1) < 0)
			_exit(2);
		_exit(1);
	}
	exit(1);
}
""", ()),
    "check": ("""\
/*
 * After a system call: `failed` says whether it returned its error value.
 * A step that expects an errno (scenario `errno:`) passes `expected`; any
 * other outcome is printed and ends the test.
 */
static void check(int failed, int expected)
{
	int e = errno;

	if (!failed && !expected)
		return;
	if (!failed) {
		say("step=%d errno=0 expected=%s", step, errno_name(expected));
		die();
	}
	say("step=%d errno=%s", step, errno_name(e));
	if (e != expected)
		die();
}
""", ("say", "errno_name", "die")),
    "fault": ("""\
/*
 * A SIGSEGV/SIGBUS is the step's outcome: print it (async-signal-safely),
 * then end the test, or go back to the step if it expected the signal.
 */
static sigjmp_buf fault_return;
static volatile sig_atomic_t fault_expected;

static void on_fault(int sig)
{
	char line[96] = "KSMREPRO step=", digits[12];
	const char *name = sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
	int n = strlen(line), v = step < 0 ? 0 : step, d = 0;

	if (LINE_PREFIX[0]) {
		memmove(line + 2, line, n + 1);
		memcpy(line, LINE_PREFIX, 2);
		n += 2;
	}
	do
		digits[d++] = '0' + v % 10;
	while ((v /= 10) != 0);
	while (d > 0)
		line[n++] = digits[--d];
	memcpy(line + n, " signal=", 8);
	n += 8;
	memcpy(line + n, name, strlen(name));
	n += strlen(name);
	line[n++] = '\\n';
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(2);
	if (fault_expected)
		siglongjmp(fault_return, 1);
	FAULT_EXIT();
}

static void catch_faults(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}
""", ("say", "die")),
    "no_fault": ("""\
/* The step expected a signal and the access went through. */
static void no_fault(void)
{
	fault_expected = 0;
	say("step=%d signal=none expected=SIGSEGV", step);
	die();
}
""", ("fault",)),
    "counter": ("""\
/*
 * One counter, read where the kernel keeps it: a file of /sys/kernel/mm/ksm/,
 * a field of /proc/self/ksm_stat (this process), and ksmrepro's extras from
 * /proc/self/status, /proc/vmstat, /proc/meminfo, /proc/self/smaps and the
 * process's memory cgroup.  *missing is set when this kernel has no such
 * counter (6.1's ksm_stat has only ksm_rmap_items, ksm_merging_pages has a file
 * of its own there, /proc/self/ksm_merging_pages, and its smaps has no "KSM:").
 */
static const struct {
	const char *name, *file, *key;
	int kb_to_pages;
} sources[] = {
	{ "ksm_rmap_items", "/proc/self/ksm_stat", "ksm_rmap_items", 0 },
	{ "ksm_merging_pages", "/proc/self/ksm_stat", "ksm_merging_pages", 0 },
	{ "ksm_process_profit", "/proc/self/ksm_stat", "ksm_process_profit", 0 },
	{ "ksm_merge_any", "/proc/self/ksm_stat", "ksm_merge_any", 0 },
	{ "ksm_mergeable", "/proc/self/ksm_stat", "ksm_mergeable", 0 },
	{ "rss_anon", "/proc/self/status", "RssAnon:", 1 },
	{ "swap_ents", "/proc/self/status", "VmSwap:", 1 },
	{ "nr_free_pages", "/proc/vmstat", "nr_free_pages", 0 },
	{ "nr_inactive_anon", "/proc/vmstat", "nr_inactive_anon", 0 },
	{ "nr_active_anon", "/proc/vmstat", "nr_active_anon", 0 },
	{ "pswpin", "/proc/vmstat", "pswpin", 0 },
	{ "pswpout", "/proc/vmstat", "pswpout", 0 },
	{ "cow_ksm", "/proc/vmstat", "cow_ksm", 0 },
	{ "ksm_swpin_copy", "/proc/vmstat", "ksm_swpin_copy", 0 },
	{ "workingset_activate_anon", "/proc/vmstat", "workingset_activate_anon", 0 },
};

/* The number after `key` in a "key value" file; sum: add up every such line. */
static long long file_field(const char *file, const char *key, int sum, int *missing)
{
	char buf[512], word[128];
	long long value, total = 0;
	int found = 0;
	FILE *f = fopen(file, "r");

	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "%127s %lld", word, &value) == 2 && !strcmp(word, key)) {
			total += value;
			found = 1;
			if (!sum)
				break;
		}
	if (f)
		fclose(f);
	*missing = !found;
	return found ? total : -1;
}

static long long counter(const char *name, int *missing)
{
	char path[512], buf[256];
	long long value = -1;
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		if (!strcmp(sources[i].name, name)) {
			value = file_field(sources[i].file, sources[i].key, 0, missing);
			if (*missing && !strcmp(name, "ksm_merging_pages"))
				break;	/* below */
			return sources[i].kb_to_pages && !*missing ? value / 4 : value;
		}
	if (!strcmp(name, "nr_swap_used")) {
		value = file_field("/proc/meminfo", "SwapTotal:", 0, missing);
		if (*missing)
			return -1;
		return (value - file_field("/proc/meminfo", "SwapFree:", 0, missing)) / 4;
	}
	if (!strcmp(name, "smaps_ksm")) {	/* "KSM:" lines are in kB */
		value = file_field("/proc/self/smaps", "KSM:", 1, missing);
		return *missing ? -1 : value * 1024;
	}
	if (!strcmp(name, "memory_current")) {	/* "0::/grp" -> /sys/fs/cgroup/grp/ */
		f = fopen("/proc/self/cgroup", "r");
		*missing = 1;
		if (f && fgets(buf, sizeof(buf), f) && !strncmp(buf, "0::", 3)) {
			buf[strcspn(buf, "\\n")] = '\\0';
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", buf + 3);
			fclose(f);
			f = fopen(path, "r");
			*missing = !f || fscanf(f, "%lld", &value) != 1;
		}
		if (f)
			fclose(f);
		return *missing ? -1 : value;
	}
	if (!strcmp(name, "ksm_merging_pages"))	/* 6.1's ksm_stat lacks it: its own file */
		snprintf(path, sizeof(path), "/proc/self/ksm_merging_pages");
	else
		snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", name);
	f = fopen(path, "r");
	*missing = !f || fscanf(f, "%lld", &value) != 1;
	if (f)
		fclose(f);
	return *missing ? -1 : value;
}
""", ()),
    "report": ("""\
/*
 * `print`/`expect`: one line with each counter named (NULL ends the list), e.g.
 * "KSMREPRO step=10 op=expect time_ns=1000512000 pages_shared=1 pages_sharing=1";
 * a counter this kernel does not have reads -1 and is listed in missing=.
 * The values are left in seen[] (and any_missing) for the caller.
 */
static long long seen[64];
static int any_missing;

static void report(const char *op, ...) __attribute__((sentinel));
static void report(const char *op, ...)
{
	char line[2048], gone[512] = "";
	const char *name;
	int i, n = 0, missing;
	va_list ap;

	line[0] = '\\0';
	any_missing = 0;
	va_start(ap, op);
	for (i = 0; i < 64 && (name = va_arg(ap, const char *)) != NULL; i++) {
		seen[i] = counter(name, &missing);
		if (n < (int)sizeof(line) - 96)
			n += snprintf(line + n, sizeof(line) - n, " %s=%lld", name, seen[i]);
		if (missing && strlen(gone) < sizeof(gone) - 96)
			snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone), "%s%s",
				 gone[0] ? "," : "", name);
		any_missing |= missing;
	}
	va_end(ap);
	say("step=%d op=%s time_ns=%lld%s%s%s", step, op, now_ns(), line,
	    gone[0] ? " missing=" : "", gone);
}
""", ("say", "now_ns", "counter")),
    "sysfs": ("""\
/* `sysfs`: echo value > path */
static void sysfs(const char *path, const char *value, int expected)
{
	check(write_file(path, value) < 0, expected);
}
""", ("check", "write_file")),
    "sleep_ns": ("""\
/* `sleep`: nanosleep(2), resumed after signals */
static void sleep_ns(long long ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
""", ()),
    "ksm_wait": ("""\
/*
 * `ksm_wait`: wait until ksmd has completed `scans` more full scans, polling
 * /sys/kernel/mm/ksm/full_scans as the mm selftests do.  Gives up after
 * KSM_WAIT_TIMEOUT seconds (ksmd not running?).
 */
static void ksm_wait(long long scans)
{
	int missing;
	long long target = counter("full_scans", &missing) + scans;
	long long deadline = now_ns() + KSM_WAIT_TIMEOUT * 1000000000LL;

	if (missing) {
		say("step=%d error=no-full_scans", step);
		die();
	}
	while (counter("full_scans", &missing) < target) {
		if (now_ns() > deadline) {
			say("step=%d error=ksm_wait-timeout", step);
			die();
		}
		sleep_ns(1000000);
	}
	say("step=%d op=ksm_wait time_ns=%lld full_scans=%lld", step, now_ns(),
	    counter("full_scans", &missing));
}
""", ("counter", "say", "now_ns", "sleep_ns", "die")),
    "touch": ("""\
/*
 * `touch`: write one byte in every page, `times` passes; value < 0 writes a
 * counter instead, so that every page's content is unique.
 */
static unsigned long long unique;

static void touch(char *addr, size_t length, int times, int value)
{
	volatile char *p = addr;
	size_t off;
	int t;

	for (t = 0; t < times; t++)
		for (off = 0; off < length; off += PAGE_SIZE) {
			if (value >= 0)
				p[off] = (char)value;
			else
				*(volatile unsigned long long *)(p + off) = ++unique;
		}
}
""", ()),
    "read_pages": ("""\
/* `read`: read every page (untouched anonymous memory maps the zero page) */
static volatile char read_sink;

static void read_pages(const char *addr, size_t length)
{
	const volatile char *p = addr;
	size_t off;
	char sum = 0;

	for (off = 0; off < length; off += PAGE_SIZE)
			sum ^= p[off];
	read_sink = sum;
}
""", ()),
    "pressure": ("""\
/*
 * `pressure`: "run something to mmap 1G anon, touch all, touch again, exit".
 * The something is this program run again with --ksmrepro-pressure (a new
 * process that shares no memory with the test); the test waits for it.
 */
static void pressure_child(size_t anon, int touches, int cpu)
{
	volatile char *p;
	size_t off;
	int t;

	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	p = mmap(NULL, anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	for (t = 0; t < touches; t++)
		for (off = 0; off < anon; off += PAGE_SIZE)
			p[off] = (char)(t + 1);
	_exit(0);
}

static void pressure(size_t anon, int touches, int cpu)
{
	char a[32], t[16], c[16];
	char *argv[] = { "ksmrepro-pressure", "--ksmrepro-pressure", a, t, c, NULL };
	int status;
	pid_t pid;

	snprintf(a, sizeof(a), "%zu", anon);
	snprintf(t, sizeof(t), "%d", touches);
	snprintf(c, sizeof(c), "%d", cpu);
	pid = fork();
	check(pid < 0, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv("/proc/self/exe", argv);
		pressure_child(anon, touches, cpu);	/* no /proc: do it here */
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			check(1, 0);
	if (WIFSIGNALED(status))
		say("step=%d op=pressure time_ns=%lld signal=%s", step, now_ns(),
		    signal_name(WTERMSIG(status)));
	else
		say("step=%d op=pressure time_ns=%lld exit=%d", step, now_ns(),
		    WEXITSTATUS(status));
}
""", ("check", "say", "now_ns", "signal_name")),
    "cgroup": ("""\
/*
 * Memory cgroups (cgroup v2 at /sys/fs/cgroup): `cgroup` makes one (and
 * enables the memory controller for children of the root), `cgroup_attach`
 * moves the calling process into it.  They are removed at exit.
 */
static void cgroup_remove(void)
{
	char path[256];
	size_t i;

	if (getpid() != main_pid)
		return;
	snprintf(path, sizeof(path), "%d", main_pid);
	write_file("/sys/fs/cgroup/cgroup.procs", path);
	for (i = 0; i < sizeof(cgroups) / sizeof(cgroups[0]); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", cgroups[i]);
		rmdir(path);
	}
}

static void cgroup_create(const char *name, long long memory_max, int expected)
{
	char path[256], value[32];
	static int cleanup;

	if (!cleanup++)
		atexit(cgroup_remove);
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		check(1, expected);
		return;
	}
	if (memory_max >= 0) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.max", name);
		snprintf(value, sizeof(value), "%lld", memory_max);
		if (write_file(path, value) < 0) {
			check(1, expected);
			return;
		}
	}
	check(0, expected);
}

static void cgroup_attach(const char *name, int expected)
{
	char path[256], pid[16];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", name);
	snprintf(pid, sizeof(pid), "%d", getpid());
	check(write_file(path, pid) < 0, expected);
}

/*
 * `memory_reclaim`: echo amount > memory.reclaim.  EAGAIN (less than amount
 * could be reclaimed) is printed, and ends the test only if the step expected
 * another outcome.
 */
static void memory_reclaim(const char *name, long long amount, int expected)
{
	char path[256], value[32];
	int failed;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.reclaim", name);
	snprintf(value, sizeof(value), "%lld", amount);
	failed = write_file(path, value) < 0;
	if (failed && errno == EAGAIN && !expected) {
		say("step=%d errno=EAGAIN", step);
		return;
	}
	check(failed, expected);
}
""", ("check", "write_file", "say")),
    "dump": ("""\
/*
 * `dump`: the process's mappings, its pages and the KSM counters, as
 * "KSMREPRO-DUMP" lines.  Pages: every present or swapped page of the anonymous
 * mappings (no pathname), at most DUMP_PAGES of them, from /proc/self/pagemap,
 * with the flags of /proc/kpageflags and the count of /proc/kpagecount (the PFN
 * reads 0 without CAP_SYS_ADMIN).
 */
#define DUMP_PAGES 256
static void dump_pages(void)
{
	static const char *const kpf[] = {
		"locked", "error", "referenced", "uptodate", "dirty", "lru", "active",
		"slab", "writeback", "reclaim", "buddy", "mmap", "anon", "swapcache",
		"swapbacked", "compound_head", "compound_tail", "huge", "unevictable",
		"hwpoison", "nopage", "ksm", "thp", "offline", "zero_page", "idle",
	};
	char buf[512], flags[400];
	unsigned long lo, hi, a;
	unsigned long long e, pfn, fl, count;
	int pm, kf, kc, rows = 0, path;
	unsigned int b;
	size_t n;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	pm = open("/proc/self/pagemap", O_RDONLY);
	kf = open("/proc/kpageflags", O_RDONLY);
	kc = open("/proc/kpagecount", O_RDONLY);
	while (f && pm >= 0 && rows < DUMP_PAGES && fgets(buf, sizeof(buf), f)) {
		path = 0;
		if (sscanf(buf, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path) < 2 ||
		    (path > 0 && buf[path] != '\\n' && buf[path] != '\\0'))
			continue;	/* a file, [heap], [stack], [vdso] ... */
		for (a = lo; a < hi && rows < DUMP_PAGES; a += PAGE_SIZE) {
			e = 0;
			if (pread(pm, &e, 8, (off_t)(a / PAGE_SIZE * 8)) != 8 || !(e >> 62))
				continue;
			rows++;
			if (!(e >> 63)) {
				printf("%sKSMREPRO-DUMP step=%d pages addr=%#lx pte=swap\\n",
				       LINE_PREFIX, step, a);
				continue;
			}
			pfn = e & ((1ULL << 55) - 1);
			fl = count = 0;
			if (kf >= 0 && pfn && pread(kf, &fl, 8, (off_t)(pfn * 8)) != 8)
				fl = 0;
			if (kc >= 0 && pfn && pread(kc, &count, 8, (off_t)(pfn * 8)) != 8)
				count = 0;
			n = 0;
			flags[0] = '\\0';
			for (b = 0; b < sizeof(kpf) / sizeof(kpf[0]); b++)
				if (fl >> b & 1)
					n += snprintf(flags + n, sizeof(flags) - n, "%s%s",
						      n ? "," : "", kpf[b]);
			printf("%sKSMREPRO-DUMP step=%d pages addr=%#lx pte=present pfn=%#llx "
			       "count=%llu flags=%s\\n", LINE_PREFIX, step, a, pfn, count,
			       n ? flags : "-");
		}
	}
	if (f)
		fclose(f);
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	if (kc >= 0)
		close(kc);
}

static void dump(int maps, int pages, int ksm)
{
	char buf[512];
	FILE *f;

	say("step=%d op=dump time_ns=%lld", step, now_ns());
	f = maps ? fopen("/proc/self/maps", "r") : NULL;
	while (f && fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\\n")] = '\\0';
		printf("%sKSMREPRO-DUMP step=%d maps %s\\n", LINE_PREFIX, step, buf);
	}
	if (f)
		fclose(f);
	if (pages)
		dump_pages();
	fflush(stdout);
	if (ksm)
		report("dump", "pages_shared", "pages_sharing", "pages_unshared",
		       "pages_volatile", "full_scans", "ksm_rmap_items", "ksm_merging_pages",
		       NULL);
}
""", ("say", "now_ns", "report")),
    "baton": ("""\
/*
 * Several processes run the steps in the scenario's order: each process has a
 * pipe (at a fixed fd, so that a spawned process finds it after exec), and the
 * process that owns step i waits there for its turn unless it ran step i - 1.
 * Every process walks through every step; my_turn(i) says whether it runs it.
 */
static int baton[NPROCS][2];
static int resume_after = -1;	/* a spawned process starts after its spawn step */

static void baton_setup(void)
{
	int p, fds[2];

	for (p = 0; p < NPROCS; p++) {
		if (pipe(fds) < 0)
			check(1, 0);
		baton[p][0] = dup2(fds[0], BATON_FD + 2 * p);
		baton[p][1] = dup2(fds[1], BATON_FD + 2 * p + 1);
		close(fds[0]);
		close(fds[1]);
	}
}

static void give_turn(int to, char what)
{
	if (write(baton[to][1], &what, 1) < 0)
		check(1, 0);
}

static char wait_turn(void)
{
	char what;

	while (read(baton[self][0], &what, 1) < 0)
		if (errno != EINTR)
			check(1, 0);
	if (what == '!')	/* another process failed */
		exit(1);
	return what;
}

static int my_turn(int i)
{
	if (i <= resume_after)
		return 0;
	if (i > 0 && step_proc[i - 1] == self && step_proc[i] != self)
		give_turn(step_proc[i], 't');
	if (step_proc[i] != self)
		return 0;
	if (i > 0 && step_proc[i - 1] != self)
		wait_turn();
	step = i;
	return 1;
}

/* main, at the end: let every other process go, and reap them all */
static void finish(void)
{
	int p;

	for (p = 0; p < NPROCS; p++)
		if (p != P_main)
			give_turn(p, 'x');
	while (wait(NULL) > 0 || errno == EINTR)
		;
}
""", ("check", "say")),
}

HELPERS["ktap"] = ("""\
/*
 * KTAP results (Documentation/dev-tools/ktap.rst): one "ok N" / "not ok N"
 * per `expect` step.  *ktap_failed is shared with forked children.
 */
static int ktap_failed_main, *ktap_failed = &ktap_failed_main;

static void ktap_result(int ok, int number, const char *what)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "%sok %d %s\\n", ok ? "" : "not ", number, what);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(3);
	if (!ok)
		__atomic_add_fetch(ktap_failed, 1, __ATOMIC_SEQ_CST);
}
""", ())

HELPERS["proc_exit"] = ("""\
/* the `exit` step: hand on the turn, then go */
static void proc_exit(int i)
{
	if (step_proc[i + 1] != self)
		give_turn(step_proc[i + 1], 't');
	exit(0);
}
""", ("baton",))
HELPERS["become"] = ("""\
/* a child made by `fork`: dies with its parent, runs as `who` */
static void become(int who)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	self = who;
}
""", ("baton",))
HELPERS["spawn"] = ("""\
/* `spawn`: fork, then exec this program to run as `who` from step i + 1 */
static pid_t spawn(int who, int i)
{
	char w[16], s[16];
	char *argv[] = { "ksmrepro-spawn", "--ksmrepro-spawn", w, s, NULL };
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(w, sizeof(w), "%d", who);
		snprintf(s, sizeof(s), "%d", i);
		execv("/proc/self/exe", argv);
		say("step=%d error=exec", i);
		_exit(1);
	}
	return pid;
}

/* a spawned process, after exec: its baton pipes are at the fixed fds */
static void baton_reopen(void)
{
	int p;

	for (p = 0; p < NPROCS; p++) {
		baton[p][0] = BATON_FD + 2 * p;
		baton[p][1] = BATON_FD + 2 * p + 1;
	}
}
""", ("baton", "say"))

# Emission order (dependencies first).
ORDER = (
    "say", "now_ns", "errno_name", "signal_name", "write_file", "die", "die_multi", "check",
    "knobs", "fault", "no_fault", "counter", "report", "sysfs", "sleep_ns", "ksm_wait",
    "touch", "read_pages", "pressure", "cgroup", "dump", "baton", "proc_exit", "become",
    "spawn", "ktap",
)


def needed(wanted: set[str]) -> list[str]:
    """``wanted`` and everything they call, in emission order."""
    todo = list(wanted)
    out: set[str] = set()
    while todo:
        h = todo.pop()
        if h in out:
            continue
        out.add(h)
        todo.extend(HELPERS[h][1])
    return [h for h in ORDER if h in out]
