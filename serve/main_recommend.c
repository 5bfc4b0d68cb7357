/*
 * bin/recommend - top-K items for users from a trained checkpoint: printed
 * for one user or a file of users, or served over HTTP (see --help).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "output.h"
#include "http.h"
#include "models/nn/blas.h"
#include "recommender.h"
#include "server.h"
#include "trainer/ckpt.h"

#define EXIT_NOUSER 67 /* sysexits' EX_NOUSER: a user the store has no record of */

static const char usage_text[] =
	"usage: recommend --ckpt DIR|FILE --data STORE (--user ID | --users FILE)\n"
	"                 [-k N] [--format tsv|json] [--exclude-rated yes|no]\n"
	"       recommend --serve HOST:PORT --ckpt DIR --data STORE [--threads N]\n"
	"\n"
	"Prints the top K items for users from a checkpoint bin/trainer wrote (a DIR\n"
	"means its latest valid checkpoint) and the store it was trained on.\n"
	"\n"
	"  --ckpt DIR|FILE         the checkpoint, or a run directory\n"
	"  --data STORE            the store (its schema must be the checkpoint's)\n"
	"  --user ID               one user, by raw id (as in the input's ratings)\n"
	"  --users FILE            users by raw id, one a line ('#' comments, blank\n"
	"                          lines skipped); '-' reads stdin\n"
	"  -k N                    items per user, 1 to 1000 (default 10)\n"
	"  --format tsv|json       tsv: a header, then 'user rank item score source\n"
	"                          title' lines; json: one object per user (default tsv)\n"
	"  --exclude-rated yes|no  leave out items the user has rated (default yes)\n"
	"  -q, -v                  warnings only / debug messages on stderr\n"
	"\n"
	"  --serve HOST:PORT       answer HTTP on HOST (a numeric address: 127.0.0.1,\n"
	"                          [::1]) and PORT (0: any free one; the line\n"
	"                          'listening on HOST:PORT' on stdout says which):\n"
	"                          GET /recommend?user=ID&k=N&exclude_rated=yes|no,\n"
	"                          /healthz, /metrics.  DIR is watched: every newly\n"
	"                          published checkpoint that verifies and fits the\n"
	"                          store is swapped in without failing a request.\n"
	"                          SIGTERM or SIGINT stop it cleanly (exit 0)\n"
	"  --threads N             HTTP worker threads, 1 to 64 (default 2)\n"
	"\n"
	"The query for a user is their most recent record in the store\n"
	"(demographics, history as of then).  A user the model cannot answer for\n"
	"(a cold user of a model that reads ids only) gets the most popular items;\n"
	"'source' says which (model or popular).\n"
	"\n"
	"exit status: 0 ok, 64 bad usage, 65 bad or foreign checkpoint or store (a\n"
	"checkpoint of another store's schema, of a model that cannot rank items,\n"
	"a malformed --users line), 66 missing checkpoint, store or users file,\n"
	"67 a user the store has no record of (with --users: after the other\n"
	"users' lists), 74 I/O error (--serve: the port cannot be opened), 70\n"
	"other.\n";

struct opts {
	const char *ckpt, *data, *users_file;
	uint32_t user;
	int have_user;
	uint32_t k;
	int json;
	int exclude;
	int header_done;   /* tsv: the header line is out */
	const char *serve; /* HOST:PORT */
	char host[64];
	uint16_t port;
	unsigned threads;
};

static int usage_error(const char *msg)
{
	log_error("%s (see --help)", msg);
	return 64;
}

/* --serve HOST:PORT into o (the last ':' splits them). */
static int parse_listen(const char *s, struct opts *o)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(o->host))
		return hr_error(HR_EINVAL,
				"--serve must be HOST:PORT (e.g. 127.0.0.1:8080), not '%s'", s);
	if (parse_u64(colon + 1, "--serve's port", 0, 65535, &port))
		return HR_EINVAL;
	memcpy(o->host, s, (size_t)(colon - s));
	o->host[colon - s] = 0;
	o->port = (uint16_t)port;
	o->serve = s;
	return 0;
}

/* Returns 0, 1 after --help, or an exit status. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_CKPT = 256, O_DATA, O_USER, O_USERS, O_FORMAT, O_EXCLUDE, O_SERVE, O_THREADS };
	static const struct option lo[] = {
		{"ckpt", required_argument, 0, O_CKPT},
		{"data", required_argument, 0, O_DATA},
		{"user", required_argument, 0, O_USER},
		{"users", required_argument, 0, O_USERS},
		{"format", required_argument, 0, O_FORMAT},
		{"exclude-rated", required_argument, 0, O_EXCLUDE},
		{"serve", required_argument, 0, O_SERVE},
		{"threads", required_argument, 0, O_THREADS},
		{"quiet", no_argument, 0, 'q'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	char msg[256];
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->k = 10;
	o->exclude = 1;
	o->threads = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:qvh", lo, NULL)) != -1) {
		switch (c) {
		case O_CKPT: o->ckpt = optarg; break;
		case O_DATA: o->data = optarg; break;
		case O_USERS: o->users_file = optarg; break;
		case O_USER:
			if (parse_u64(optarg, "--user", 0, UINT32_MAX, &v))
				return usage_error(hr_errmsg());
			o->user = (uint32_t)v;
			o->have_user = 1;
			break;
		case 'k':
			if (parse_u64(optarg, "-k", 1, REC_K_MAX, &v))
				return usage_error(hr_errmsg());
			o->k = (uint32_t)v;
			break;
		case O_FORMAT:
			if (strcmp(optarg, "tsv") && strcmp(optarg, "json")) {
				snprintf(msg, sizeof(msg), "--format must be tsv or json, not '%s'",
					 optarg);
				return usage_error(msg);
			}
			o->json = !strcmp(optarg, "json");
			break;
		case O_EXCLUDE:
			if ((o->exclude = parse_bool(optarg)) < 0) {
				snprintf(msg, sizeof(msg),
					 "--exclude-rated must be yes or no, not '%s'", optarg);
				return usage_error(msg);
			}
			break;
		case O_SERVE:
			if (parse_listen(optarg, o))
				return usage_error(hr_errmsg());
			break;
		case O_THREADS:
			if (parse_u64(optarg, "--threads", 1, HTTP_MAX_THREADS, &v))
				return usage_error(hr_errmsg());
			o->threads = (unsigned)v;
			break;
		case 'q': log_set_level(LOG_WARN); break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage_text, stdout); return 1;
		case ':':
			snprintf(msg, sizeof(msg), "option '%s' needs a value", argv[optind - 1]);
			return usage_error(msg);
		default:
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[optind - 1]);
			return usage_error(msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument '%s'", argv[optind]);
		return usage_error(msg);
	}
	if (!o->ckpt || !o->data)
		return usage_error(!o->ckpt ? "--ckpt is required" : "--data is required");
	if (o->serve) {
		struct stat st;
		if (o->have_user || o->users_file)
			return usage_error(
				"--serve answers users over HTTP: leave out --user and --users");
		if (stat(o->ckpt, &st) == 0 && !S_ISDIR(st.st_mode))
			return usage_error(
				"--serve watches a checkpoint directory: --ckpt must be one");
		return 0;
	}
	if (o->have_user == !!o->users_file)
		return usage_error("give one of --user ID and --users FILE");
	return 0;
}

/* Opens the checkpoint `given` names: a file, or a directory's latest valid one. */
static int open_ckpt(const char *given, struct ckpt **c)
{
	char file[CKPT_PATH_MAX];
	struct stat st;
	int rc;

	*c = NULL;
	if (stat(given, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR ?
			       hr_error(HR_ENOENT, "--ckpt: '%s' does not exist", given) :
			       hr_error(hr_errno_code(errno), "--ckpt: cannot read '%s': %s", given,
					strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ckpt_open(c, given);
	rc = ckpt_latest(given, file, sizeof(file));
	return rc ? rc : ckpt_open(c, file);
}

/* The exit status of a failure to load: a checkpoint that does not fit is bad data. */
static int load_status(int rc)
{
	log_error("%s", hr_errmsg());
	return rc == HR_EINVAL ? 65 : hr_exit_code(rc);
}

/* One user's list on stdout; 0, EXIT_NOUSER, or another exit status. */
static int print_user(struct recommender *r, const struct serve_data *d, struct opts *o,
		      uint32_t user, struct rec_list *l)
{
	int rc = recommender_top(r, user, o->k, o->exclude, l);

	if (rc == HR_ENOENT) {
		log_error("%s", hr_errmsg());
		return EXIT_NOUSER;
	}
	if (rc) {
		log_error("%s", hr_errmsg());
		return hr_exit_code(rc);
	}
	if (o->json) {
		char *text = output_json(r, &d->cat, l, o->exclude);
		if (!text) {
			log_error("out of memory");
			return 70;
		}
		puts(text);
		free(text);
	} else {
		if (!o->header_done++)
			output_tsv_header(stdout);
		output_tsv(stdout, &d->cat, l);
	}
	return 0;
}

/* Every user of the --users file; the first failure's status after all of them. */
static int print_users(struct recommender *r, const struct serve_data *d, struct opts *o,
		       struct rec_list *l)
{
	int from_stdin = !strcmp(o->users_file, "-"), status = 0;
	FILE *f = from_stdin ? stdin : fopen(o->users_file, "r");
	char line[256];
	unsigned long lineno = 0;

	if (!f) {
		int e = errno;
		log_error("cannot open '%s': %s", o->users_file, strerror(e));
		return hr_exit_code(hr_errno_code(e));
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *end;
		uint64_t v;
		int st;
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			log_error("%s:%lu: line too long", o->users_file, lineno);
			status = 65;
			break;
		}
		while (*s == ' ' || *s == '\t')
			s++;
		end = s + strcspn(s, " \t\r\n#");
		if (*s == '#' || end == s) {
			if (*end == '#' || *end == '\n' || *end == '\r' ||
			    !*end) /* blank, comment */
				continue;
		}
		*end = 0;
		if (parse_u64_quiet(s, &v) || v > UINT32_MAX) {
			log_error("%s:%lu: '%s' is not a user id", o->users_file, lineno, s);
			status = 65;
			break;
		}
		st = print_user(r, d, o, (uint32_t)v, l);
		if (st && st != EXIT_NOUSER) {
			status = st;
			break;
		}
		if (st && !status)
			status = st;
	}
	if (ferror(f) && !status) {
		log_error("cannot read '%s'", o->users_file);
		status = 74;
	}
	if (!from_stdin)
		fclose(f);
	return status;
}

int main(int argc, char **argv)
{
	struct serve_data d;
	struct recommender *r = NULL;
	struct ckpt *c = NULL;
	struct rec_list *l;
	struct opts o;
	int rc, status;

	log_init("recommend", LOG_INFO);
	if ((status = parse_args(argc, argv, &o)))
		return status == 1 ? 0 : status;
	/* As the trainer: may re-exec with a better OpenBLAS kernel (checked
	 * against the reference); one BLAS thread per caller, since requests
	 * score on the server's worker threads. */
	rc = nn_blas_choose_kernel(argv);
	if (rc) {
		log_error("%s", hr_errmsg());
		return hr_exit_code(rc);
	}
	nn_blas_single_thread();
	if (o.serve) {
		const struct server_opts so = {o.ckpt, o.data, o.host, o.port, o.threads};
		return server_run(&so);
	}
	rc = open_ckpt(o.ckpt, &c);
	if (rc)
		return load_status(rc);
	rc = serve_data_open(&d, o.data);
	if (rc) {
		ckpt_close(c);
		return load_status(rc);
	}
	rc = recommender_load(&r, &d, c);
	ckpt_close(c);
	if (rc) {
		serve_data_close(&d);
		return load_status(rc);
	}
	log_info("model %s, step %llu, from '%s'", recommender_model(r),
		 (unsigned long long)recommender_step(r), recommender_path(r));
	l = malloc(sizeof(*l));
	if (!l) {
		log_error("out of memory");
		status = 70;
	} else {
		status = o.users_file ? print_users(r, &d, &o, l) :
					print_user(r, &d, &o, o.user, l);
	}
	if (fflush(stdout) && !status) {
		log_error("cannot write the output: %s", strerror(errno));
		status = 74;
	}
	free(l);
	recommender_free(r);
	serve_data_close(&d);
	return status;
}
