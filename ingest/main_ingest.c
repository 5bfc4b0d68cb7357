/* bin/ingest - MovieLens directory -> hogrec store.  See --help. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/progress.h"
#include "ingest/dataset.h"
#include "ingest/ingest.h"
#include "store/codec.h"
#include "store/store.h"

static void usage(FILE *out)
{
	fputs("usage: ingest [options] DIR\n"
	      "       ingest --inspect STORE [--json]\n"
	      "       ingest --dump STORE SPLIT [N]\n"
	      "\n"
	      "Reads a MovieLens download (ml-1m: ratings.dat users.dat movies.dat;\n"
	      "ml-100k: u.data u.user u.item; ml-latest/ml-20m/ml-25m: ratings.csv\n"
	      "movies.csv) and writes a training store (LMDB + msgpack, docs/FORMAT.md).\n"
	      "\n"
	      "options:\n"
	      "  -o, --output PATH    store to write (default: DIR.lmdb beside DIR)\n"
	      "  -f, --force          replace an existing store at PATH\n"
	      "  --label MODE         explicit (default) or implicit (every rating positive)\n"
	      "  --pos-min X          explicit: ratings >= X are positive (default 4)\n"
	      "  --neg-max X          explicit: ratings <= X are negative (default 2);\n"
	      "                       ratings in between are dropped\n"
	      "  --split KIND         global (default: by time), user (each user's latest),\n"
	      "                       loo (each user's last event is test, the one before valid)\n"
	      "  --valid-frac F       valid share (default 0.1)\n"
	      "  --test-frac F        test share (default 0.1)\n"
	      "  --hist-len L         history length (default 50)\n"
	      "  --seed S             negative-history seed (default 1)\n"
	      "  --zip-prefix N       zip code characters kept as the zip category (default 3)\n"
	      "  --max-errors N       skip up to N malformed lines instead of stopping (default 0)\n"
	      "  --json               print the summary as one JSON line on stdout\n"
	      "  -q, --quiet          no progress bars, no summary\n"
	      "  -v, --verbose        debug logging\n"
	      "  -h, --help           this help\n"
	      "\n"
	      "examples:\n"
	      "  ingest ml-1m/                       # writes ml-1m.lmdb\n"
	      "  ingest --split user -o s.lmdb ml-100k/\n"
	      "  ingest --inspect ml-1m.lmdb\n"
	      "  ingest --dump ml-1m.lmdb test 3     # first 3 test records as JSON lines\n"
	      "\n"
	      "exit status: 0 ok, 64 bad usage or option, 65 malformed input or not a store,\n"
	      "66 input missing, 73 output exists, 74 I/O error, 130 interrupted, 70 other.\n",
	      out);
}

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
	(void)sig;
	ingest_cancel = 1;
	fault_point_release();
	if (++signals_seen > 1)
		_exit(130); /* second signal: stop now; the temporary dir is cleaned next run */
}

static int die(int rc)
{
	log_error("%s", hr_errmsg());
	return hr_exit_code(rc);
}

/* A bad command line: the message and a pointer to --help, not the help itself. */
static int usage_error(int rc)
{
	log_error("%s (see --help)", hr_errmsg());
	return hr_exit_code(rc);
}

static int read_meta(struct store_reader *r, msgpack_unpacked *u)
{
	const void *v;
	size_t n, off = 0;
	int rc = store_get(r, STORE_META, "meta", 4, &v, &n);

	if (rc == HR_ENOENT)
		return hr_error(HR_ESTORE, "store has no meta entry");
	if (rc)
		return rc;
	if (msgpack_well_sized(v, n) ||
	    msgpack_unpack_next(u, v, n, &off) != MSGPACK_UNPACK_SUCCESS)
		return hr_error(HR_ESTORE, "store meta is not valid msgpack");
	return 0;
}

/*
 * Whether --inspect shows the meta entry kv.  meta.split holds the largest
 * train and valid timestamps; only under the global split are they the
 * time cuts between the splits.  Under a per-user split (user, loo) they
 * would read as cuts that do not exist, so --inspect leaves them out (the
 * store keeps them: --follow uses train_end_ts whatever the split).
 */
static int meta_entry_shown(const msgpack_object *meta, const msgpack_object_kv *kv)
{
	const msgpack_object *kind = msgpack_map_get(msgpack_map_get(meta, "options"), "split");

	if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != 5 ||
	    memcmp(kv->key.via.str.ptr, "split", 5))
		return 1;
	return !kind || kind->type != MSGPACK_OBJECT_STR ||
	       (kind->via.str.size == 6 && !memcmp(kind->via.str.ptr, "global", 6));
}

static void print_meta_json(const msgpack_object *m)
{
	int n = 0;

	if (m->type != MSGPACK_OBJECT_MAP) {
		msgpack_to_json(stdout, m);
		fputc('\n', stdout);
		return;
	}
	fputc('{', stdout);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];
		if (!meta_entry_shown(m, kv))
			continue;
		if (n++)
			fputc(',', stdout);
		msgpack_to_json(stdout, &kv->key);
		fputc(':', stdout);
		msgpack_to_json(stdout, &kv->val);
	}
	fputs("}\n", stdout);
}

static int cmd_inspect(const char *path, int json)
{
	struct store *st;
	struct store_reader *r = NULL;
	msgpack_unpacked u;
	int rc = store_open(&st, path);

	if (rc)
		return die(rc);
	msgpack_unpacked_init(&u);
	rc = store_reader_begin(st, &r);
	if (!rc)
		rc = read_meta(r, &u);
	if (!rc && json) {
		print_meta_json(&u.data);
	} else if (!rc) {
		const msgpack_object *m = &u.data;
		printf("store %s\n", path);
		for (uint32_t i = 0; m->type == MSGPACK_OBJECT_MAP && i < m->via.map.size; i++) {
			const msgpack_object_kv *kv = &m->via.map.ptr[i];
			if (!meta_entry_shown(m, kv))
				continue;
			printf("  %.*s: ", (int)kv->key.via.str.size, kv->key.via.str.ptr);
			msgpack_to_json(stdout, &kv->val);
			fputc('\n', stdout);
		}
		for (int db = 0; db < STORE_NDB; db++) {
			uint64_t n = 0;
			if (store_count(r, db, &n) == 0)
				printf("  entries.%s: %llu\n", store_db_name(db),
				       (unsigned long long)n);
		}
	}
	msgpack_unpacked_destroy(&u);
	store_reader_end(r);
	store_close(st);
	return rc ? die(rc) : 0;
}

static void print_record(const struct record *r)
{
	printf("{\"user_raw\":%u,\"item_raw\":%u,\"rating\":%.9g,\"ts\":%u,\"label\":%u,"
	       "\"user\":%u,\"item\":%u,\"gender\":%u,\"age\":%u,\"occupation\":%u,\"zip\":%u",
	       r->user_raw, r->item_raw, r->rating, r->ts, r->label, r->user, r->item, r->gender,
	       r->age, r->occupation, r->zip);
	printf(",\"genres\":[");
	for (uint32_t i = 0; i < r->n_genres; i++)
		printf("%s%u", i ? "," : "", r->genres[i]);
	printf("],\"dense\":[");
	for (uint32_t i = 0; i < r->n_dense; i++)
		printf("%s%.9g", i ? "," : "", r->dense[i]);
	printf("],\"hist\":[");
	for (uint32_t i = 0; i < r->n_hist; i++)
		printf("%s%u", i ? "," : "", r->hist[i]);
	printf("],\"neg_hist\":[");
	for (uint32_t i = 0; i < r->n_neg; i++)
		printf("%s%u", i ? "," : "", r->neg[i]);
	printf("]}\n");
}

static int cmd_dump(const char *path, const char *split, const char *count)
{
	static uint32_t hist[INGEST_HIST_MAX], neg[INGEST_HIST_MAX];
	struct store *st;
	struct store_reader *r = NULL;
	struct record rec = {.hist = hist, .neg = neg, .hist_cap = INGEST_HIST_MAX};
	uint64_t n = 10, total = 0;
	int db = -1, rc;

	for (int s = STORE_TRAIN; s <= STORE_TEST; s++)
		if (!strcmp(split, store_db_name(s)))
			db = s;
	if (db < 0)
		return usage_error(
			hr_error(HR_EINVAL, "--dump: '%s' is not train, valid or test", split));
	if (count && (rc = parse_u64(count, "--dump COUNT", 0, UINT64_MAX, &n)))
		return usage_error(rc);
	rc = store_open(&st, path);
	if (rc)
		return die(rc);
	rc = store_reader_begin(st, &r);
	if (!rc)
		rc = store_count(r, db, &total);
	for (uint64_t k = 0; !rc && k < n && k < total; k++) {
		const void *v;
		size_t len;
		rc = store_get_u64(r, db, k, &v, &len);
		if (!rc)
			rc = record_unpack(v, len, &rec);
		if (rc)
			hr_error_prefix(rc, "'%s' %s record %llu", path, split,
					(unsigned long long)k);
		else
			print_record(&rec);
	}
	store_reader_end(r);
	store_close(st);
	return rc ? die(rc) : 0;
}

int main(int argc, char **argv)
{
	enum {
		OPT_LABEL = 256,
		OPT_POS,
		OPT_NEG,
		OPT_SPLIT,
		OPT_VALID,
		OPT_TEST,
		OPT_HIST,
		OPT_SEED,
		OPT_ZIP,
		OPT_MAXERR,
		OPT_JSON,
		OPT_INSPECT,
		OPT_DUMP
	};
	static const struct option longopts[] = {
		{"output", required_argument, 0, 'o'},
		{"force", no_argument, 0, 'f'},
		{"quiet", no_argument, 0, 'q'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{"label", required_argument, 0, OPT_LABEL},
		{"pos-min", required_argument, 0, OPT_POS},
		{"neg-max", required_argument, 0, OPT_NEG},
		{"split", required_argument, 0, OPT_SPLIT},
		{"valid-frac", required_argument, 0, OPT_VALID},
		{"test-frac", required_argument, 0, OPT_TEST},
		{"hist-len", required_argument, 0, OPT_HIST},
		{"seed", required_argument, 0, OPT_SEED},
		{"zip-prefix", required_argument, 0, OPT_ZIP},
		{"max-errors", required_argument, 0, OPT_MAXERR},
		{"json", no_argument, 0, OPT_JSON},
		{"inspect", no_argument, 0, OPT_INSPECT},
		{"dump", no_argument, 0, OPT_DUMP},
		{0, 0, 0, 0},
	};
	struct ingest_opts o;
	struct ingest_report rep;
	enum label_mode mode = LABEL_EXPLICIT;
	double pos_min = 4, neg_max = 2;
	int quiet = 0, json = 0, inspect = 0, dump = 0, c, rc = 0;
	char out_default[4096];
	uint64_t u;

	log_init("ingest", LOG_INFO);
	ingest_opts_defaults(&o);
	while ((c = getopt_long(argc, argv, "o:fqvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.out_path = optarg; break;
		case 'f': o.force = 1; break;
		case 'q':
			quiet = 1;
			log_set_level(LOG_WARN);
			break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case OPT_LABEL:
			if (!strcmp(optarg, "explicit"))
				mode = LABEL_EXPLICIT;
			else if (!strcmp(optarg, "implicit"))
				mode = LABEL_IMPLICIT;
			else
				rc = hr_error(HR_EINVAL,
					      "--label: '%s' is not explicit or implicit", optarg);
			break;
		case OPT_POS: rc = parse_f64(optarg, "--pos-min", 0, 10, &pos_min); break;
		case OPT_NEG: rc = parse_f64(optarg, "--neg-max", 0, 10, &neg_max); break;
		case OPT_SPLIT: {
			int k = split_kind_parse(optarg);
			if (k < 0)
				rc = hr_error(HR_EINVAL, "--split: '%s' is not global, user or loo",
					      optarg);
			else
				o.split.kind = (enum split_kind)k;
			break;
		}
		case OPT_VALID:
			rc = parse_f64(optarg, "--valid-frac", 0, 1, &o.split.valid_frac);
			break;
		case OPT_TEST:
			rc = parse_f64(optarg, "--test-frac", 0, 1, &o.split.test_frac);
			break;
		case OPT_HIST:
			rc = parse_u64(optarg, "--hist-len", 1, INGEST_HIST_MAX, &u);
			o.hist_len = rc ? o.hist_len : (uint32_t)u;
			break;
		case OPT_SEED: rc = parse_u64(optarg, "--seed", 0, UINT64_MAX, &o.seed); break;
		case OPT_ZIP:
			rc = parse_u64(optarg, "--zip-prefix", 1, DS_ZIP_MAX - 1, &u);
			o.zip_prefix = rc ? o.zip_prefix : (int)u;
			break;
		case OPT_MAXERR:
			rc = parse_u64(optarg, "--max-errors", 0, SIZE_MAX, &u);
			o.max_errors = rc ? o.max_errors : (size_t)u;
			break;
		case OPT_JSON: json = 1; break;
		case OPT_INSPECT: inspect = 1; break;
		case OPT_DUMP: dump = 1; break;
		default: /* getopt has said which option and why */
			return usage_error(hr_error(HR_EINVAL, "bad option"));
		}
		if (rc)
			return usage_error(rc);
	}
	if (inspect) {
		if (argc - optind != 1)
			return usage_error(hr_error(HR_EINVAL, "--inspect takes one STORE"));
		return cmd_inspect(argv[optind], json);
	}
	if (dump) {
		if (argc - optind < 2 || argc - optind > 3)
			return usage_error(hr_error(HR_EINVAL, "--dump takes STORE SPLIT [N]"));
		return cmd_dump(argv[optind], argv[optind + 1], argv[optind + 2]);
	}
	if (argc - optind == 0)
		return usage_error(hr_error(HR_EINVAL, "no input DIR given"));
	if (argc - optind > 1)
		return usage_error(
			hr_error(HR_EINVAL, "unexpected argument '%s'", argv[optind + 1]));
	o.in_dir = argv[optind];
	rc = label_rule_init(&o.label, mode, pos_min, neg_max);
	if (rc)
		return die(rc);
	if (!o.out_path) {
		size_t n = strlen(o.in_dir);
		while (n > 1 && o.in_dir[n - 1] == '/')
			n--;
		if ((size_t)snprintf(out_default, sizeof(out_default), "%.*s.lmdb", (int)n,
				     o.in_dir) >= sizeof(out_default))
			return die(hr_error(HR_EINVAL, "input path too long"));
		o.out_path = out_default;
	}
	{
		/* Fault injection for the failure tests; never set in normal use. */
		const char *f = getenv("HOGREC_FAULT_AFTER");
		if (f && parse_u64_quiet(f, &u) == 0)
			o.fault_after = (size_t)u;
	}
	progress_enable(!quiet);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = ingest_run(&o, &rep);
	if (rc)
		return die(rc);
	if (json)
		ingest_report_json(stdout, &rep);
	else if (!quiet)
		ingest_report_print(stderr, &o, &rep);
	return 0;
}
