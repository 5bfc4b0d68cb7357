/*
 * Unit tests of the trainer's configuration (trainer/config.h): the INI
 * loader, its FILE:LINE messages, command-line overrides, the printer's
 * round trip and the example deploy/trainer.ini (found from the working
 * directory, the repository root under `make test`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "models/model.h"
#include "trainer/config.h"

/* A temporary file holding len bytes of text; the caller unlinks and frees. */
static char *tmp_file(const char *text, size_t len)
{
	const char *dir = getenv("TMPDIR");
	char *path = malloc(4096);
	int fd;

	assert_non_null(path);
	snprintf(path, 4096, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static void drop_file(char *path)
{
	unlink(path);
	free(path);
}

/* config_load of text into fresh defaults: returns the status, o loaded. */
static int load_text(struct train_opts *o, const char *text, char **path)
{
	config_defaults(o);
	*path = tmp_file(text, strlen(text));
	return config_load(o, *path);
}

static void assert_opts_equal(const struct train_opts *a, const struct train_opts *b)
{
	const char *sa[] = {a->data, a->out, a->model, a->init_from},
		   *sb[] = {b->data, b->out, b->model, b->init_from};

	for (int k = 0; k < 4; k++) {
		assert_true((sa[k] == NULL) == (sb[k] == NULL));
		if (sa[k])
			assert_string_equal(sa[k], sb[k]);
	}
	assert_int_equal(a->epochs, b->epochs);
	assert_int_equal(a->early_stop, b->early_stop);
	assert_int_equal(a->threads, b->threads);
	assert_int_equal(a->loaders, b->loaders);
	assert_int_equal(a->batch, b->batch);
	assert_int_equal(a->seed, b->seed);
	assert_int_equal(a->optim.kind, b->optim.kind);
	assert_true(a->optim.lr == b->optim.lr);
	assert_true(a->optim.lr_sparse == b->optim.lr_sparse);
	assert_true(a->optim.l2 == b->optim.l2);
	assert_true(a->optim.beta1 == b->optim.beta1);
	assert_true(a->optim.beta2 == b->optim.beta2);
	assert_true(a->optim.eps == b->optim.eps);
	assert_int_equal(a->mcfg.emb_dim, b->mcfg.emb_dim);
	assert_int_equal(a->mcfg.n_hidden, b->mcfg.n_hidden);
	for (int k = 0; k < a->mcfg.n_hidden; k++)
		assert_int_equal(a->mcfg.hidden[k], b->mcfg.hidden[k]);
	assert_int_equal(a->mcfg.seed, b->mcfg.seed);
	assert_int_equal(a->progress, b->progress);
	assert_int_equal(a->loader_only, b->loader_only);
	assert_int_equal(a->ckpt_every_steps, b->ckpt_every_steps);
	assert_true(a->ckpt_every_secs == b->ckpt_every_secs);
	assert_int_equal(a->keep, b->keep);
	assert_int_equal(a->resume, b->resume);
	assert_int_equal(a->predict_n, b->predict_n);
}

/* Every key, none at its default. */
static const char full_file[] = "; a full configuration\n"
				"# both comment styles\n"
				"[trainer]\n"
				"data = /srv/data/ml 1m.lmdb\n"
				"model = ncf\n"
				"out: runs/ncf ; inline comment\n"
				"epochs = 7\n"
				"early_stop = 0\n"
				"threads = 3\n"
				"loaders = 2\n"
				"batch = 1024\n"
				"optim = adagrad\n"
				"lr = 0.05\n"
				"lr_sparse = 0.2\n"
				"l2 = 1e-5\n"
				"emb_dim = 48\n"
				"hidden = 128, 64,16\n"
				"seed = 123456789012\n"
				"ckpt_every_steps = 5000\n"
				"ckpt_every_secs = 90.5\n"
				"keep = 9\n"
				"resume = No\n"
				"progress = off\n"
				"log_level = debug\n";

static void test_full_file(void **state)
{
	struct train_opts o;
	char *path;
	(void)state;
	assert_int_equal(load_text(&o, full_file, &path), 0);
	assert_string_equal(o.data, "/srv/data/ml 1m.lmdb");
	assert_string_equal(o.model, "ncf");
	assert_string_equal(o.out, "runs/ncf");
	assert_int_equal(o.epochs, 7);
	assert_int_equal(o.early_stop, 0);
	assert_int_equal(o.threads, 3);
	assert_int_equal(o.loaders, 2);
	assert_int_equal(o.batch, 1024);
	assert_int_equal(o.optim.kind, OPTIM_ADAGRAD);
	assert_true(o.optim.eps == 1e-10f); /* adagrad's constants came with it */
	assert_true(o.optim.lr == 0.05f);
	assert_true(o.optim.lr_sparse == 0.2f);
	assert_true(o.optim.l2 == 1e-5f);
	assert_int_equal(o.mcfg.emb_dim, 48);
	assert_int_equal(o.mcfg.n_hidden, 3);
	assert_int_equal(o.mcfg.hidden[0], 128);
	assert_int_equal(o.mcfg.hidden[1], 64);
	assert_int_equal(o.mcfg.hidden[2], 16);
	assert_int_equal(o.seed, 123456789012ull);
	assert_int_equal(o.mcfg.seed, 123456789012ull);
	assert_int_equal(o.ckpt_every_steps, 5000);
	assert_true(o.ckpt_every_secs == 90.5);
	assert_int_equal(o.keep, 9);
	assert_int_equal(o.resume, 0);
	assert_int_equal(o.progress, 0);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	assert_int_equal(config_finish(&o), 0);
	assert_true(o.optim.lr == 0.05f && o.optim.lr_sparse == 0.2f); /* explicit: kept */
	log_set_level(LOG_INFO);
	config_release(&o);
	assert_null(o.data);
	drop_file(path);
}

/* CRLF line ends, a UTF-8 byte-order mark, an empty file, blank lines. */
static void test_file_forms(void **state)
{
	static const char *const ok[] = {
		"[trainer]\r\nbatch = 7\r\n",
		"\xEF\xBB\xBF[trainer]\nbatch = 7\n",
		"\n\n[trainer]\n\n  ; indented comment\n\t\nbatch=7",
		"[trainer] ; x\nbatch = 7 ; y\n",
	};
	struct train_opts o;
	char *path;
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(load_text(&o, ok[i], &path), 0);
		assert_int_equal(o.batch, 7);
		config_release(&o);
		drop_file(path);
	}
	assert_int_equal(load_text(&o, "", &path), 0);
	assert_int_equal(o.batch, 256);
	drop_file(path);
}

struct bad_case {
	const char *text;
	const char *msg; /* after "PATH:" */
};

static const struct bad_case bad_cases[] = {
	/* unknown keys and sections */
	{"[trainer]\nbach = 3\n", "2: unknown key 'bach' in [trainer] (did you mean 'batch'?)"},
	{"[trainer]\nlr-sparse = 0.1\n",
	 "2: unknown key 'lr-sparse' in [trainer] (did you mean 'lr_sparse'?)"},
	{"[trainer]\nwarp_drive = 9\n", "2: unknown key 'warp_drive' in [trainer]"},
	{"batch = 3\n[trainer]\n", "1: 'batch' before any section (start with [trainer])"},
	{"; c\n[model]\nemb_dim = 3\n",
	 "3: unknown key 'emb_dim' in [model] (trainer --help lists each model's options)"},
	{"; c\n[modle]\nemb_dim = 3\n",
	 "2: unknown section [modle] (the options go in [trainer], the model's in [model])"},
	{"[trainer]\nbatch = 2\n[Trainer]\n",
	 "3: unknown section [Trainer] (the options go in [trainer], the model's in [model])"},
	/* bad values */
	{"[trainer]\n\n# x\nepochs = 2\n\n\nbatch = lots\n",
	 "7: 'batch' must be an integer between 1 and 65536, not 'lots'"},
	{"[trainer]\nbatch = 0\n", "2: 'batch' must be an integer between 1 and 65536, not '0'"},
	{"[trainer]\nbatch = 65537\n",
	 "2: 'batch' must be an integer between 1 and 65536, not '65537'"},
	{"[trainer]\nbatch = -1\n", "2: 'batch' must be an integer between 1 and 65536, not '-1'"},
	{"[trainer]\nbatch = 2.5\n",
	 "2: 'batch' must be an integer between 1 and 65536, not '2.5'"},
	{"[trainer]\nbatch = 256 # no\n",
	 "2: 'batch' must be an integer between 1 and 65536, not '256 # no'"},
	{"[trainer]\nbatch =\n", "2: 'batch' must be an integer between 1 and 65536, not ''"},
	{"[trainer]\nseed = 99999999999999999999\n",
	 "2: 'seed' must be an integer between 0 and 1000000000000000000, not "
	 "'99999999999999999999'"},
	{"[trainer]\nlr = 101\n", "2: 'lr' must be a number between 0 and 100, not '101'"},
	{"[trainer]\nlr = nan\n", "2: 'lr' must be a number between 0 and 100, not 'nan'"},
	{"[trainer]\nl2 = 1x\n", "2: 'l2' must be a number between 0 and 10, not '1x'"},
	{"[trainer]\nresume = maybe\n", "2: 'resume' must be yes or no, not 'maybe'"},
	{"[trainer]\noptim = rmsprop\n",
	 "2: 'optim' must be one of sgd, adagrad, adam, not 'rmsprop'"},
	{"[trainer]\nlog_level = loud\n",
	 "2: 'log_level' must be one of error, warn, info, debug, not 'loud'"},
	{"[trainer]\nhidden = 64,,32\n",
	 "2: 'hidden' must be up to 8 integers between 1 and 65536, comma separated, not '64,,32'"},
	{"[trainer]\nhidden = 64,\n",
	 "2: 'hidden' must be up to 8 integers between 1 and 65536, comma separated, not '64,'"},
	{"[trainer]\nhidden = 1,2,3,4,5,6,7,8,9\n",
	 "2: 'hidden' must be up to 8 integers between 1 and 65536, comma separated, not "
	 "'1,2,3,4,5,6,7,8,9'"},
	{"[trainer]\nmodel = resnet\n", "2: unknown model 'resnet' (trainer --help lists them)"},
	{"[trainer]\ndata =\n",
	 "2: 'data' must be non-empty, without control characters, surrounding spaces or ' ;', "
	 "not ''"},
	/* duplicates */
	{"[trainer]\nbatch = 1\nepochs = 2\nbatch = 1\n",
	 "4: duplicate key 'batch' (first set on line 2)"},
	{"[trainer]\ndata = a\n[trainer]\ndata = b\n",
	 "4: duplicate key 'data' (first set on line 2)"},
	/* syntax */
	{"[trainer]\nbatch 256\n", "2: expected 'key = value' or '[section]', not 'batch 256'"},
	{"[trainer\nbatch = 1\n", "1: expected '[trainer]', not '[trainer'"},
	{"[trainer]\nepochs = 2\n  batch = 3\n",
	 "3: indented line '  batch = 3' (it would continue the previous value)"},
	{"\t[trainer]\n", "1: indented line '\t[trainer]' (it would continue the previous value)"},
	/* the first error wins: line 2, not 3 */
	{"[trainer]\nbatch = x\nepochs = y\n",
	 "2: 'batch' must be an integer between 1 and 65536, not 'x'"},
};

static void test_errors(void **state)
{
	struct train_opts o;
	char *path, want[8192];
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int rc = load_text(&o, bad_cases[i].text, &path);
		snprintf(want, sizeof(want), "%s:%s", path, bad_cases[i].msg);
		if (rc != HR_EINVAL || strcmp(hr_errmsg(), want))
			fail_msg("case %zu: rc %d, message\n  '%s', expected\n  '%s'", i, rc,
				 hr_errmsg(), want);
		config_release(&o);
		drop_file(path);
	}
}

/* Parsing stops at the first error: later lines are not applied. */
static void test_stops_at_first_error(void **state)
{
	struct train_opts o;
	char *path;
	(void)state;
	assert_int_equal(load_text(&o, "[trainer]\nepochs = 4\nbatch = x\nkeep = 8\n", &path),
			 HR_EINVAL);
	assert_int_equal(o.epochs, 4);
	assert_int_equal(o.keep, 3);
	config_release(&o);
	drop_file(path);
}

static void test_long_line_and_nul(void **state)
{
	char text[512], want[8192], *path;
	struct train_opts o;
	(void)state;
	/* 198 characters fit (inih's 200-byte buffer holds them and "\n\0")... */
	int n = snprintf(text, sizeof(text), "[trainer]\ndata = ");
	memset(text + n, 'x', 198 - 7);
	strcpy(text + n + 198 - 7, "\n");
	assert_int_equal(load_text(&o, text, &path), 0);
	assert_int_equal(strlen(o.data), 198 - 7);
	config_release(&o);
	drop_file(path);
	/* ...199 do not, whether or not a newline follows. */
	memset(text + n, 'x', 199 - 7);
	strcpy(text + n + 199 - 7, "\nbatch = 1\n");
	assert_int_equal(load_text(&o, text, &path), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:2: line longer than 198 characters", path);
	assert_string_equal(hr_errmsg(), want);
	assert_null(o.data);
	config_release(&o);
	drop_file(path);

	static const char nul[] = "[trainer]\nepo\0chs = 1\n";
	config_defaults(&o);
	path = tmp_file(nul, sizeof(nul) - 1);
	assert_int_equal(config_load(&o, path), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in the line", path);
	assert_string_equal(hr_errmsg(), want);
	drop_file(path);
}

static void test_missing_and_unreadable(void **state)
{
	struct train_opts o;
	char want[8192];
	(void)state;
	config_defaults(&o);
	assert_int_equal(config_load(&o, "/nonexistent/trainer.ini"), HR_ENOENT);
	assert_string_equal(hr_errmsg(),
			    "cannot open '/nonexistent/trainer.ini': No such file or directory");
	/* A directory opens but does not read. */
	const char *dir = getenv("TMPDIR");
	dir = dir && *dir ? dir : "/tmp";
	assert_int_equal(config_load(&o, dir), HR_EIO);
	snprintf(want, sizeof(want), "cannot read '%s': Is a directory", dir);
	assert_string_equal(hr_errmsg(), want);
}

/* Flags after the file win, and their messages name the flag. */
static void test_overrides(void **state)
{
	struct train_opts o;
	char *path;
	(void)state;
	assert_int_equal(load_text(&o,
				   "[trainer]\ndata = a.lmdb\nmodel = ncf\nout = runs/a\n"
				   "batch = 512\noptim = sgd\nlr = 0.5\nhidden = 8\n",
				   &path),
			 0);
	assert_int_equal(config_apply_option(&o, "batch", "64", "--batch"), 0);
	assert_int_equal(config_apply_option(&o, "data", "b.lmdb", "--data"), 0);
	assert_int_equal(config_apply_option(&o, "lr-sparse", "0.25", "--lr-sparse"), 0);
	assert_int_equal(config_apply_option(&o, "optim", "adam", "--optim"), 0);
	assert_int_equal(config_apply_option(&o, "hidden", "", "--hidden"), 0);
	assert_int_equal(config_apply_option(&o, "resume", "false", "--resume"), 0);
	assert_int_equal(o.batch, 64);
	assert_string_equal(o.data, "b.lmdb"); /* a.lmdb freed (ASan would tell) */
	assert_int_equal(o.optim.kind, OPTIM_ADAM);
	assert_true(o.optim.beta2 == 0.999f);
	assert_true(o.optim.lr == 0.5f); /* the file's lr survives the optimizer change */
	assert_true(o.optim.lr_sparse == 0.25f);
	assert_int_equal(o.mcfg.n_hidden, 0);
	assert_int_equal(o.resume, 0);

	/* A bad flag leaves o alone and names the flag. */
	assert_int_equal(config_apply_option(&o, "batch", "lots", "--batch"), HR_EINVAL);
	assert_string_equal(hr_errmsg(),
			    "--batch: must be an integer between 1 and 65536, not 'lots'");
	assert_int_equal(o.batch, 64);
	assert_int_equal(config_apply_option(&o, "model", "resnet", "--model"), HR_EINVAL);
	assert_string_equal(hr_errmsg(),
			    "--model: unknown model 'resnet' (trainer --help lists them)");
	assert_string_equal(o.model, "ncf");
	assert_int_equal(config_apply_option(&o, "bogus", "1", "--bogus"), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "--bogus: unknown option 'bogus'");
	assert_int_equal(config_apply_option(&o, "out", "runs/ ;x", "--out"), HR_EINVAL);

	assert_int_equal(config_finish(&o), 0);
	assert_true(o.optim.lr == 0.5f && o.optim.lr_sparse == 0.25f);
	/* The model's widths, made explicit for --check-config. */
	const uint32_t *h = model_find("ncf")->default_hidden;
	int n = 0;
	while (h[n])
		n++;
	assert_true(n > 0);
	assert_int_equal(o.mcfg.n_hidden, n);
	for (int k = 0; k < n; k++)
		assert_int_equal(o.mcfg.hidden[k], h[k]);
	config_release(&o);
	drop_file(path);
}

/* lr and optim mean the same in any order; 0 picks the optimizer's. */
static void test_order_independent(void **state)
{
	struct train_opts a, b, c;
	(void)state;
	config_defaults(&a);
	config_defaults(&b);
	config_defaults(&c);
	const char *base[][2] = {{"data", "d"}, {"model", "dssm"}, {"out", "o"}};
	for (int k = 0; k < 3; k++) {
		assert_int_equal(config_apply_option(&a, base[k][0], base[k][1], "x:1"), 0);
		assert_int_equal(config_apply_option(&b, base[k][0], base[k][1], "x:1"), 0);
		assert_int_equal(config_apply_option(&c, base[k][0], base[k][1], "x:1"), 0);
	}
	assert_int_equal(config_apply_option(&a, "lr", "0.3", "--lr"), 0);
	assert_int_equal(config_apply_option(&a, "optim", "sgd", "--optim"), 0);
	assert_int_equal(config_apply_option(&b, "optim", "sgd", "--optim"), 0);
	assert_int_equal(config_apply_option(&b, "lr", "0.3", "--lr"), 0);
	assert_int_equal(config_finish(&a), 0);
	assert_int_equal(config_finish(&b), 0);
	assert_opts_equal(&a, &b);
	assert_true(a.optim.lr == 0.3f && a.optim.lr_sparse == 0.3f);

	assert_int_equal(config_apply_option(&c, "optim", "adagrad", "--optim"), 0);
	assert_int_equal(config_finish(&c), 0);
	assert_true(c.optim.lr == 0.01f && c.optim.lr_sparse == 0.01f);
	config_release(&a);
	config_release(&b);
	config_release(&c);
}

/* config_print writes what config_load reads back to the same options. */
static void round_trip(const struct train_opts *o)
{
	struct train_opts back;
	char *buf = NULL, *path;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	enum log_level level = log_get_level();

	assert_non_null(f);
	config_print(f, o);
	fclose(f);
	log_set_level(level == LOG_DEBUG ? LOG_ERROR : LOG_DEBUG);
	config_defaults(&back);
	path = tmp_file(buf, len);
	if (config_load(&back, path))
		fail_msg("%s\n%s", hr_errmsg(), buf);
	assert_opts_equal(o, &back);
	assert_int_equal(log_get_level(), level);
	config_release(&back);
	drop_file(path);
	free(buf);
}

static void test_round_trip(void **state)
{
	struct train_opts o;
	char *path;
	(void)state;
	config_defaults(&o);
	round_trip(&o); /* unset strings and an empty list included */
	config_release(&o);
	assert_int_equal(load_text(&o, full_file, &path), 0);
	round_trip(&o);
	assert_int_equal(config_finish(&o), 0);
	round_trip(&o);
	/* Awkward but representable values. */
	assert_int_equal(config_apply_option(&o, "out", "a;b = c: d", "--out"), 0);
	assert_int_equal(config_apply_option(&o, "lr", "0.1", "--lr"), 0);
	assert_int_equal(config_apply_option(&o, "l2", "0.123456789", "--l2"), 0);
	assert_int_equal(config_apply_option(&o, "ckpt_every_secs", "1234.56789012345", "--x"), 0);
	assert_int_equal(config_apply_option(&o, "seed", "1000000000000000000", "--seed"), 0);
	round_trip(&o);
	log_set_level(LOG_INFO);
	config_release(&o);
	drop_file(path);
}

/* The default each comment announces is what config_defaults sets. */
static void test_table(void **state)
{
	struct train_opts o;
	char *buf = NULL, line[512], prev[512] = "";
	size_t len = 0;
	(void)state;
	for (size_t i = 0; i < config_option_count(); i++) {
		const char *key = config_option_key(i), *flag = config_option_flag(i);
		assert_int_equal(strlen(key), strlen(flag));
		for (size_t k = 0; key[k]; k++)
			assert_int_equal(flag[k], key[k] == '_' ? '-' : key[k]);
	}
	config_defaults(&o);
	FILE *f = open_memstream(&buf, &len);
	config_print(f, &o);
	fclose(f);
	f = fmemopen(buf, len, "r");
	int checked = 0;
	while (fgets(line, sizeof(line), f)) {
		char *def = strstr(prev, "; default "), *eq = strstr(line, " =");
		line[strcspn(line, "\n")] = '\0';
		if (def && eq && line[0] != ';') {
			def += strlen("; default ");
			def[strcspn(def, "\n")] = '\0';
			const char *value = eq[2] ? eq + 3 : "empty";
			if (strcmp(def, value))
				fail_msg("'%s': default '%s' announced, '%s' set", line, def,
					 value);
			checked++;
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	free(buf);
	assert_true(checked >= 15);
	/* The enum names follow enum optim_kind. */
	const char *names[] = {"sgd", "adagrad", "adam"};
	for (int k = 0; k < 3; k++) {
		assert_int_equal(config_apply_option(&o, "optim", names[k], "--optim"), 0);
		assert_int_equal(o.optim.kind, k);
		assert_int_equal(optim_parse(names[k]), k);
	}
	config_release(&o);
}

static void test_check(void **state)
{
	struct train_opts o;
	(void)state;
	config_defaults(&o);
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "'data' is not set (--data, or data in [trainer])");
	assert_int_equal(config_apply_option(&o, "data", "d", "--data"), 0);
	assert_int_equal(config_apply_option(&o, "out", "o", "--out"), 0);
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "'model' is not set (--model, or model in [trainer])");
	assert_int_equal(config_apply_option(&o, "model", "dssm", "--model"), 0);
	assert_int_equal(config_check(&o), 0);
	o.batch = 0; /* set by hand: still checked */
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "'batch' must be an integer between 1 and 65536, not '0'");
	o.batch = 256;
	o.mcfg.n_hidden = MODEL_MAX_HIDDEN + 1;
	assert_int_equal(config_check(&o), HR_EINVAL);
	o.mcfg.n_hidden = 0;
	assert_int_equal(config_apply_option(&o, "out", "d", "--out"), 0);
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "'data' and 'out' are the same directory 'd'");
	assert_int_equal(config_finish(&o), HR_EINVAL);
	config_release(&o);
}

/* --predict: the checkpoint names the model, so none is required; the
 * split is checked with the options, before anything loads. */
static void test_check_predict(void **state)
{
	struct train_opts o;
	(void)state;
	config_defaults(&o);
	assert_int_equal(config_apply_option(&o, "data", "d", "--data"), 0);
	assert_int_equal(config_apply_option(&o, "out", "o", "--out"), 0);
	o.predict = "test";
	assert_int_equal(config_finish(&o), 0);
	assert_null(o.model);
	assert_int_equal(o.mcfg.n_hidden, 0); /* no model: no default widths */
	o.predict = "train";
	assert_int_equal(config_check(&o), 0);
	o.predict = "tset";
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "--predict: 'tset' is not train, valid or test");
	assert_int_equal(config_apply_option(&o, "model", "ncf", "--model"), 0);
	assert_int_equal(config_check(&o), HR_EINVAL); /* a model does not excuse the split */
	o.predict = NULL;
	assert_int_equal(config_check(&o), 0);
	assert_int_equal(config_apply_option(&o, "model", "dssm", "--model"), 0);
	o.predict = "valid";
	assert_int_equal(config_finish(&o), 0);
	assert_true(o.mcfg.n_hidden > 0); /* a model given with --predict: its widths */
	config_release(&o);
}

/* init_from: a list of 1 to 8 paths, for a model that can start from
 * checkpoints; --predict (which trains nothing) ignores it. */
static void test_init_from(void **state)
{
	struct train_opts o;
	(void)state;
	config_defaults(&o);
	assert_int_equal(config_apply_option(&o, "data", "d", "--data"), 0);
	assert_int_equal(config_apply_option(&o, "out", "o", "--out"), 0);
	assert_int_equal(config_apply_option(&o, "model", "neumf", "--model"), 0);
	assert_int_equal(config_apply_option(&o, "init-from", "runs/gmf,runs/ncf/ckpt.st", "--x"),
			 0);
	assert_string_equal(o.init_from, "runs/gmf,runs/ncf/ckpt.st");
	assert_int_equal(config_check(&o), 0);
	round_trip(&o);
	static const char *const bad[] = {"a,,b", ",a", "a,", "1,2,3,4,5,6,7,8,9"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char want[160];
		assert_int_equal(config_apply_option(&o, "init_from", bad[k], "x:1"), 0);
		assert_int_equal(config_check(&o), HR_EINVAL);
		snprintf(want, sizeof(want),
			 "'init_from' must be 1 to 8 checkpoint paths separated by commas, not "
			 "'%s'",
			 bad[k]);
		assert_string_equal(hr_errmsg(), want);
	}
	assert_int_equal(config_apply_option(&o, "init_from", "1,2,3,4,5,6,7,8", "x:1"), 0);
	assert_int_equal(config_check(&o), 0);
	assert_int_equal(config_apply_option(&o, "model", "ncf", "--model"), 0);
	assert_int_equal(config_check(&o), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "'init_from': model 'ncf' cannot start from other "
					 "models' checkpoints (neumf can)");
	o.predict = "test";
	assert_int_equal(config_check(&o), 0);
	config_release(&o);
	assert_null(o.init_from);
}

/* deploy/trainer.ini parses, passes the checks and mentions every key. */
static void test_deploy_example(void **state)
{
	static const char *const where[] = {"deploy/trainer.ini", "../deploy/trainer.ini",
					    "../../deploy/trainer.ini"};
	const char *path = NULL;
	struct train_opts o;
	char text[16384], key[64];
	(void)state;
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]) && !path; i++)
		if (access(where[i], R_OK) == 0)
			path = where[i];
	if (!path)
		fail_msg("deploy/trainer.ini not found from the working directory");
	config_defaults(&o);
	if (config_load(&o, path))
		fail_msg("%s", hr_errmsg());
	assert_int_equal(config_finish(&o), 0);
	assert_int_equal(log_get_level(), LOG_INFO);
	config_release(&o);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(text + 1, 1, sizeof(text) - 2, f);
	fclose(f);
	text[0] = '\n';
	text[n + 1] = '\0';
	for (size_t i = 0; i < config_option_count(); i++) {
		snprintf(key, sizeof(key), "\n%s =", config_option_key(i));
		int found = strstr(text, key) != NULL;
		snprintf(key, sizeof(key), "\n;%s =", config_option_key(i));
		if (!found && !strstr(text, key))
			fail_msg("deploy/trainer.ini lacks '%s'", config_option_key(i));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_file_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stops_at_first_error),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_missing_and_unreadable),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_predict),
		cmocka_unit_test(test_init_from),
		cmocka_unit_test(test_deploy_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
