/* bin/ckpt - inspect, verify, export and watch checkpoints.  See --help. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/npy.h"
#include "common/parse.h"
#include "trainer/ckpt.h"

static const char usage_text[] =
	"usage: ckpt inspect [--json] FILE|DIR\n"
	"       ckpt verify FILE|DIR\n"
	"       ckpt export FILE|DIR --tensor NAME -o OUT.npy\n"
	"       ckpt export FILE|DIR --all -o OUTDIR\n"
	"       ckpt watch DIR [--once] [-- CMD [ARGS...]]\n"
	"       ckpt COMMAND --help\n"
	"\n"
	"Reads the checkpoints bin/trainer writes: safetensors files with hogrec\n"
	"metadata (docs/FORMAT.md, \"Checkpoints\").  A DIR argument means the\n"
	"checkpoint DIR/latest names (or, if that one is missing or bad, the newest\n"
	"valid one).  -q (warnings only) and -v (debug) go before or after COMMAND.\n"
	"\n"
	"A checkpoint may come from anywhere: every value is range-checked, a NaN or\n"
	"infinity, a 'latest' that is not a bare name in DIR and a file that is not\n"
	"a regular file (a FIFO) are refused.\n"
	"\n"
	"exit status: 0 ok, 64 bad usage, 65 bad checkpoint (or a DIR whose\n"
	"checkpoints are all bad), 66 missing file or tensor, 74 I/O error or not a\n"
	"regular file, 70 other.\n";

static const char inspect_help[] =
	"usage: ckpt inspect [--json] FILE|DIR\n"
	"\n"
	"Prints a checkpoint's metadata (model, schema hash, epoch, step, samples,\n"
	"creation time, crc32, the trainer's JSON) and its tensors with shapes.\n"
	"The file is fully validated first.\n"
	"\n"
	"  --json   one JSON object on stdout instead of text\n";

static const char verify_help[] =
	"usage: ckpt verify FILE|DIR\n"
	"\n"
	"Validates a checkpoint completely (layout, header, every tensor entry,\n"
	"the type and range of every metadata value, the crc32 of the file, every\n"
	"float finite: a NaN or infinity is reported with its tensor and first\n"
	"index).  For a DIR, validates every ckpt-*.safetensors in it and what\n"
	"'latest' points to (which must be a bare file name in DIR), and lists the\n"
	"bad ones.  Exit 0 when everything is valid, 65 otherwise (66: nothing to\n"
	"verify; 74: FILE is not a regular file).\n";

static const char export_help[] =
	"usage: ckpt export FILE|DIR --tensor NAME -o OUT.npy\n"
	"       ckpt export FILE|DIR --all -o OUTDIR\n"
	"\n"
	"Writes tensors as numpy .npy files (format 1.0, little-endian float32,\n"
	"C order, shape (rows, cols)), each through a temporary file renamed into\n"
	"place.  --all writes OUTDIR/<name>.npy for every tensor (creating OUTDIR;\n"
	"a '/' in a name becomes '_').  numpy.load() reads them.\n";

static const char watch_help[] =
	"usage: ckpt watch DIR [--once] [-- CMD [ARGS...]]\n"
	"\n"
	"Waits for checkpoints published into DIR (inotify, IN_MOVED_TO of\n"
	"ckpt-*.safetensors).  Each new one is validated, then CMD ARGS is run with\n"
	"the checkpoint's path appended and waited for; without CMD the path is\n"
	"printed on stdout.  Bad checkpoints are logged and skipped, as are failures\n"
	"of CMD.  SIGINT or SIGTERM stop the watch cleanly (after a running CMD\n"
	"ends; a second signal exits at once).\n"
	"\n"
	"  --once   exit after the first checkpoint; the exit status is CMD's\n"
	"\n"
	"example:\n"
	"  ckpt watch runs/dssm -- python3 serve_reload.py\n";

static int die(int rc)
{
	log_error("%s", hr_errmsg());
	return hr_exit_code(rc);
}

/* A usage error: the message and where help is, not the help itself. */
static int usage_error(const char *help, const char *msg)
{
	(void)help; /* the command's --help prints it */
	log_error("%s (see --help)", msg);
	return 64;
}

/*
 * getopt_long over one command's arguments (argv[0] is the command), with
 * -q, -v and -h shared by every command.  Returns the option, -1 at the end,
 * or 'h' / '?' (the caller prints help or fails).
 */
static int next_opt(int argc, char **argv, const char *shorts, const struct option *lo)
{
	int c;

	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == 'q')
			log_set_level(LOG_WARN);
		else if (c == 'v')
			log_set_level(LOG_DEBUG);
		else
			return c;
	}
	return -1;
}

/* FILE, or DIR's latest checkpoint, into path. */
static int resolve(const char *arg, char *path, size_t cap)
{
	if (path_is_dir(arg))
		return ckpt_latest(arg, path, cap);
	if ((size_t)snprintf(path, cap, "%s", arg) >= cap)
		return hr_error(HR_EINVAL, "path too long: '%s'", arg);
	return 0;
}

static int open_arg(const char *arg, struct ckpt **c)
{
	char path[PATH_MAX];
	int rc = resolve(arg, path, sizeof(path));

	return rc ? rc : ckpt_open(c, path);
}

/* ---- inspect ---- */

static void print_text(const struct ckpt *c)
{
	const struct ckpt_info *in = ckpt_get_info(c);
	char when[32] = "?";
	time_t t = (time_t)in->created;
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("path         %s\n", ckpt_path(c));
	printf("format       " CKPT_FORMAT " version %u%s\n", in->version,
	       in->version == 1 ? " (metadata not covered by the crc32)" : "");
	printf("model        %s\n", in->model);
	printf("schema_hash  %s\n", in->schema_hash);
	printf("epoch        %" PRIu64 "\n", in->epoch);
	printf("step         %" PRIu64 "\n", in->step);
	printf("samples      %" PRIu64 "\n", in->samples);
	printf("created      %s (%" PRId64 ")\n", when, in->created);
	printf("crc32        %08" PRIx32 "\n", in->crc32);
	printf("bytes        %" PRIu64 " (header %" PRIu64 ", tensors %" PRIu64 ")\n",
	       in->file_bytes, in->header_bytes, in->payload_bytes);
	printf("hogrec       %s\n", ckpt_extra_json(c));
	printf("tensors      %d\n", ckpt_ntensors(c));
	for (int i = 0; i < ckpt_ntensors(c); i++) {
		uint64_t r, k;
		char shape[48];
		ckpt_tensor_at(c, i, &r, &k);
		snprintf(shape, sizeof(shape), "%" PRIu64 " x %" PRIu64, r, k);
		printf("  %-32s %-16s %12" PRIu64 " floats\n", ckpt_tensor_name(c, i), shape,
		       r * k);
	}
}

static int print_json(const struct ckpt *c)
{
	const struct ckpt_info *in = ckpt_get_info(c);
	json_t *o, *ts = json_array(), *extra;
	char crc[9], version[4];

	/* Large integers in the trainer's JSON become reals rather than fail. */
	extra = json_loads(ckpt_extra_json(c), 0, NULL);
	if (!extra)
		extra = json_loads(ckpt_extra_json(c), JSON_DECODE_INT_AS_REAL, NULL);
	snprintf(crc, sizeof(crc), "%08" PRIx32, in->crc32);
	snprintf(version, sizeof(version), "%u", in->version);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:o, s:o}",
		      "path", ckpt_path(c), "format", CKPT_FORMAT, "version", version, "model",
		      in->model, "schema_hash", in->schema_hash, "epoch", (json_int_t)in->epoch,
		      "step", (json_int_t)in->step, "samples", (json_int_t)in->samples, "created",
		      (json_int_t)in->created, "crc32", crc, "file_bytes",
		      (json_int_t)in->file_bytes, "header_bytes", (json_int_t)in->header_bytes,
		      "payload_bytes", (json_int_t)in->payload_bytes, "hogrec",
		      extra ? extra : json_object(), "tensors", ts);
	if (!o)
		return hr_error(HR_ENOMEM, "out of memory");
	for (int i = 0; i < ckpt_ntensors(c); i++) {
		uint64_t r, k;
		ckpt_tensor_at(c, i, &r, &k);
		json_array_append_new(ts,
				      json_pack("{s:s, s:[I, I]}", "name", ckpt_tensor_name(c, i),
						"shape", (json_int_t)r, (json_int_t)k));
	}
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return 0;
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	struct ckpt *c;
	int json = 0, o, rc;

	while ((o = next_opt(argc, argv, "qvh", lo)) != -1) {
		if (o == 'j')
			json = 1;
		else if (o == 'h')
			return fputs(inspect_help, stdout), 0;
		else
			return usage_error(inspect_help, "bad option");
	}
	if (argc - optind != 1)
		return usage_error(inspect_help, "inspect takes one FILE or DIR");
	rc = open_arg(argv[optind], &c);
	if (rc)
		return die(rc);
	if (json)
		rc = print_json(c);
	else
		print_text(c);
	ckpt_close(c);
	return rc ? die(rc) : 0;
}

/* ---- verify ---- */

static int verify_one(const char *path, const char *label)
{
	struct ckpt *c;
	int rc = ckpt_open(&c, path);

	if (rc) {
		printf("bad  %s\n", hr_errmsg());
		return rc;
	}
	printf("ok   %s (step %" PRIu64 ", %d tensors%s)\n", label, ckpt_get_info(c)->step,
	       ckpt_ntensors(c),
	       ckpt_get_info(c)->version == 1 ? ", version 1: metadata not checksummed" : "");
	ckpt_close(c);
	return 0;
}

static int verify_dir(const char *dir)
{
	struct ckpt_entry *v;
	size_t n, nbad = 0;
	char p[PATH_MAX], target[256];
	int rc = ckpt_list(dir, &v, &n);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (path_join(p, sizeof(p), dir, v[i].name) || verify_one(p, v[i].name))
			nbad++;
	}
	free(v);
	/*
	 * latest: a dangling or bad target, or one outside dir (never followed),
	 * is a problem even if every file is fine.
	 */
	rc = ckpt_read_latest(dir, target, sizeof(target));
	if (rc == 0) {
		char label[PATH_MAX + 16];
		snprintf(label, sizeof(label), "latest -> %s", target);
		if (path_join(p, sizeof(p), dir, target) || verify_one(p, label))
			nbad++;
	} else if (rc == HR_EFORMAT || rc == HR_EIO) {
		printf("bad  %s\n", hr_errmsg());
		nbad++;
	} else if (n > 0) {
		printf("note '%s/latest' is missing\n", dir);
	}
	if (n == 0 && !nbad)
		return hr_error(HR_ENOENT, "no checkpoints in '%s'", dir);
	if (nbad)
		return hr_error(HR_EFORMAT, "%zu of %zu checked in '%s' are bad", nbad,
				n + (rc != HR_ENOENT), dir);
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int o, rc;

	while ((o = next_opt(argc, argv, "qvh", lo)) != -1) {
		if (o == 'h')
			return fputs(verify_help, stdout), 0;
		return usage_error(verify_help, "bad option");
	}
	if (argc - optind != 1)
		return usage_error(verify_help, "verify takes one FILE or DIR");
	if (path_is_dir(argv[optind]))
		rc = verify_dir(argv[optind]);
	else if ((rc = verify_one(argv[optind], argv[optind])) != 0)
		return hr_exit_code(rc); /* verify_one printed the reason */
	if (rc)
		return die(rc);
	return 0;
}

/* ---- export ---- */

static int export_all(const struct ckpt *c, const char *outdir)
{
	if (mkdir(outdir, 0755) < 0 && !(errno == EEXIST && path_is_dir(outdir)))
		return hr_error(HR_EIO, "cannot create directory '%s': %s", outdir,
				strerror(errno));
	for (int i = 0; i < ckpt_ntensors(c); i++) {
		char name[256], p[PATH_MAX];
		uint64_t r, k;
		const float *d = ckpt_tensor_at(c, i, &r, &k);
		int rc;
		snprintf(name, sizeof(name), "%s.npy", ckpt_tensor_name(c, i));
		for (char *s = name; *s; s++)
			if (*s == '/')
				*s = '_';
		if (name[0] == '.')
			name[0] = '_';
		rc = path_join(p, sizeof(p), outdir, name);
		if (!rc)
			rc = npy_write(p, NPY_F32, d, r, k);
		if (rc)
			return rc;
		log_info("wrote '%s' (%" PRIu64 " x %" PRIu64 ")", p, r, k);
	}
	return 0;
}

static int cmd_export(int argc, char **argv)
{
	static const struct option lo[] = {{"tensor", required_argument, NULL, 't'},
					   {"all", no_argument, NULL, 'a'},
					   {"output", required_argument, NULL, 'o'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *tensor = NULL, *out = NULL;
	struct ckpt *c;
	int all = 0, o, rc;

	while ((o = next_opt(argc, argv, "o:qvh", lo)) != -1) {
		if (o == 't')
			tensor = optarg;
		else if (o == 'a')
			all = 1;
		else if (o == 'o')
			out = optarg;
		else if (o == 'h')
			return fputs(export_help, stdout), 0;
		else
			return usage_error(export_help, "bad option");
	}
	if (argc - optind != 1 || !out || !!tensor == all)
		return usage_error(export_help,
				   "export takes FILE|DIR, -o, and one of --tensor NAME or --all");
	rc = open_arg(argv[optind], &c);
	if (rc)
		return die(rc);
	if (all) {
		rc = export_all(c, out);
	} else {
		uint64_t r, k;
		const float *d = ckpt_tensor(c, tensor, &r, &k);
		if (!d)
			rc = hr_error(HR_ENOENT, "no tensor '%s' in '%s' (ckpt inspect lists them)",
				      tensor, ckpt_path(c));
		else
			rc = npy_write(out, NPY_F32, d, r, k);
	}
	ckpt_close(c);
	return rc ? die(rc) : 0;
}

/* ---- watch ---- */

static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
	static const char msg[] = "ckpt: info: stopping\n";
	ssize_t k;

	(void)sig;
	if (++signals_seen > 1)
		_exit(130);
	k = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	k = write(stop_pipe[1], "x", 1); /* wakes ckpt_watch_run's poll */
	(void)k;
}

struct watch_ctx {
	char **cmd; /* NULL: print the path */
	int ncmd;
	int once;
	int status; /* CMD's exit status (--once) */
};

static int run_cmd(struct watch_ctx *w, const char *path)
{
	char **args = calloc((size_t)w->ncmd + 2, sizeof(*args));
	pid_t pid;
	int st = 0;

	if (!args)
		return hr_error(HR_ENOMEM, "out of memory");
	memcpy(args, w->cmd, (size_t)w->ncmd * sizeof(*args));
	args[w->ncmd] = (char *)path;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		free(args);
		log_warn("cannot start '%s': %s", w->cmd[0], strerror(errno));
		return 70;
	}
	if (pid == 0) {
		execvp(args[0], args);
		dprintf(STDERR_FILENO, "ckpt: error: cannot run '%s': %s\n", args[0],
			strerror(errno));
		_exit(127);
	}
	free(args);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 70;
	if (WIFEXITED(st)) {
		int code = WEXITSTATUS(st);
		if (code)
			log_warn("'%s' exited %d on '%s'", w->cmd[0], code, path);
		else
			log_info("'%s' done on '%s'", w->cmd[0], path);
		return code;
	}
	log_warn("'%s' was killed by signal %d on '%s'", w->cmd[0], WTERMSIG(st), path);
	return 128 + WTERMSIG(st);
}

static int on_checkpoint(const char *path, const struct ckpt *c, void *ctx)
{
	struct watch_ctx *w = ctx;

	log_info("new checkpoint '%s' (model %s, epoch %" PRIu64 ", step %" PRIu64 ")", path,
		 ckpt_get_info(c)->model, ckpt_get_info(c)->epoch, ckpt_get_info(c)->step);
	if (w->cmd) {
		w->status = run_cmd(w, path);
	} else {
		printf("%s\n", path);
		fflush(stdout);
	}
	return w->once || signals_seen ? 1 : 0;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option lo[] = {{"once", no_argument, NULL, '1'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	struct watch_ctx w = {0};
	struct ckpt_watch *cw;
	struct sigaction sa;
	int o, rc, nopt = argc;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			nopt = i;
			w.cmd = argv + i + 1;
			w.ncmd = argc - i - 1;
			break;
		}
	while ((o = next_opt(nopt, argv, "qvh", lo)) != -1) {
		if (o == '1')
			w.once = 1;
		else if (o == 'h')
			return fputs(watch_help, stdout), 0;
		else
			return usage_error(watch_help, "bad option");
	}
	if (nopt - optind != 1)
		return usage_error(watch_help, "watch takes one DIR (then -- CMD ARGS...)");
	if (w.cmd && w.ncmd == 0)
		return usage_error(watch_help, "no CMD after '--'");
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return die(hr_error(HR_EIO, "pipe: %s", strerror(errno)));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll and waitpid see EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = ckpt_watch_open(&cw, argv[optind]);
	if (rc)
		return die(rc);
	log_info("watching '%s'", argv[optind]);
	rc = ckpt_watch_run(cw, stop_pipe[0], on_checkpoint, &w);
	ckpt_watch_close(cw);
	if (rc)
		return die(rc);
	return w.once && w.cmd ? w.status : 0;
}

/* ---- selftest-write (hidden; the interop test uses it) ---- */

/*
 * Deterministic tensors of about 673k floats, the size of a small two-tower
 * model: value j of tensor k is ((j * 7919 + k * 104729) mod 65536 - 32768)
 * / 4096, exact in float32 (tests/integration/ckpt_interop.py recomputes it).
 */
static const struct {
	const char *name;
	uint64_t rows, cols;
} selftest_shapes[] = {
	{"user_emb", 6041, 32}, {"item_emb", 3707, 32}, {"mlp.w0", 512, 640},
	{"mlp.b0", 1, 512},     {"mlp.w1", 64, 512},    {"mlp.b1", 1, 64},
	{"out.w", 1, 64},       {"out.b", 1, 1},        {"empty", 0, 8},
};

#define SELFTEST_N ((int)(sizeof(selftest_shapes) / sizeof(selftest_shapes[0])))

static int cmd_selftest_write(int argc, char **argv)
{
	static const struct option lo[] = {{"step", required_argument, NULL, 's'},
					   {NULL, 0, NULL, 0}};
	struct ckpt_tensor t[SELFTEST_N];
	struct ckpt_info info = {
		.model = "selftest", .schema_hash = "0123456789abcdef", .epoch = 3};
	char path[PATH_MAX];
	struct timespec t0, t1;
	uint64_t floats = 0;
	int o, rc = 0;

	info.step = 12345;
	while ((o = next_opt(argc, argv, "qv", lo)) != -1) {
		if (o != 's')
			return 64;
		if (parse_u64(optarg, "--step", 0, (UINT64_C(1) << 53) - 1, &info.step))
			return usage_error(usage_text, hr_errmsg());
	}
	if (argc - optind != 1)
		return usage_error(usage_text, "selftest-write takes one DIR");
	info.samples = info.step * 256;
	if (mkdir(argv[optind], 0755) < 0 && errno != EEXIST)
		return die(
			hr_error(HR_EIO, "cannot create '%s': %s", argv[optind], strerror(errno)));
	for (int k = 0; k < SELFTEST_N; k++) {
		uint64_t n = selftest_shapes[k].rows * selftest_shapes[k].cols;
		float *d = malloc((n ? n : 1) * sizeof(float));
		if (!d) {
			rc = hr_error(HR_ENOMEM, "out of memory");
			for (int i = 0; i < k; i++)
				free((void *)t[i].data);
			return die(rc);
		}
		for (uint64_t j = 0; j < n; j++)
			d[j] = (float)((int64_t)((j * 7919 + (uint64_t)k * 104729) % 65536) -
				       32768) /
			       4096.0f;
		t[k] = (struct ckpt_tensor){selftest_shapes[k].name, d, selftest_shapes[k].rows,
					    selftest_shapes[k].cols};
		floats += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = ckpt_save(argv[optind], &info,
		       "{\"selftest\": true, \"optim\": {\"name\": \"adam\", \"lr\": 0.001}, "
		       "\"rng\": [\"9e3779b97f4a7c15\", \"bf58476d1ce4e5b9\"], \"big\": "
		       "18446744073709551615}",
		       t, SELFTEST_N, path, sizeof(path));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int k = 0; k < SELFTEST_N; k++)
		free((void *)t[k].data);
	if (rc)
		return die(rc);
	log_info("wrote '%s': %" PRIu64 " floats in %.2f ms", path, floats,
		 (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	printf("%s\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd, *fault = getenv("HOGREC_CKPT_FAULT");

	log_init("ckpt", LOG_INFO);
	while (argc > 1 && (!strcmp(argv[1], "-q") || !strcmp(argv[1], "-v"))) {
		log_set_level(argv[1][1] == 'q' ? LOG_WARN : LOG_DEBUG);
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cmd = argc > 1 ? argv[1] : NULL;
	uint64_t after;
	if (fault && parse_u64_quiet(fault, &after) == 0) /* fault injection: tests only */
		ckpt_fault_inject(CKPT_FAULT_WRITE, after);
	if (!cmd) {
		fputs(usage_text, stderr);
		return 64;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(cmd, "export"))
		return cmd_export(argc - 1, argv + 1);
	if (!strcmp(cmd, "watch"))
		return cmd_watch(argc - 1, argv + 1);
	if (!strcmp(cmd, "selftest-write"))
		return cmd_selftest_write(argc - 1, argv + 1);
	log_error("unknown command '%s': inspect, verify, export or watch (see --help)", cmd);
	return 64;
}
