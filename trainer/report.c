/* report.c - a run's learning curves as SVG through gnuplot (report.h). */
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"

#define EPOCH_MAX 100000

/* The columns of OUT.dat after the epoch, in this order. */
enum col {
	C_LOSS,
	C_SAMPLES,
	C_V_AUC,
	C_T_AUC,
	C_BASE_AUC,
	C_V_SAMPLED,
	C_V_RMSE,
	C_T_RMSE,
	C_BASE_RMSE,
	C_R10,
	C_R20,
	C_R50,
	C_R100,
	C_POP_R10,
	C_KNN_R10,
	C_IALS_R10,
	C_N
};

/* The metrics line key behind each column, and the split it comes from ("" either). */
static const struct {
	const char *key, *split;
} cols[C_N] = {
	[C_LOSS] = {"train_loss", ""},
	[C_SAMPLES] = {"samples_per_s", ""},
	[C_V_AUC] = {"auc", "valid"},
	[C_T_AUC] = {"auc", "test"},
	[C_BASE_AUC] = {"baseline_auc", "valid"},
	[C_V_SAMPLED] = {"sampled_auc", "valid"},
	[C_V_RMSE] = {"rmse", "valid"},
	[C_T_RMSE] = {"rmse", "test"},
	[C_BASE_RMSE] = {"rmse_item_mean", "valid"},
	[C_R10] = {"recall@10", "valid"},
	[C_R20] = {"recall@20", "valid"},
	[C_R50] = {"recall@50", "valid"},
	[C_R100] = {"recall@100", "valid"},
	[C_POP_R10] = {"baseline_recall@10", "valid"},
	[C_KNN_R10] = {"knn_recall@10", "valid"},
	[C_IALS_R10] = {"ials_recall@10", "valid"},
};

struct curves {
	double (*v)[C_N]; /* (cap) per epoch; NaN: not reported */
	int cap, last;    /* last: the highest epoch seen */
	int has[C_N];     /* some epoch has the column */
	char model[64];
};

static int grow(struct curves *c, int epoch)
{
	if (epoch < c->cap)
		return 0;
	int cap = c->cap ? c->cap : 16;
	while (cap <= epoch)
		cap *= 2;
	double(*v)[C_N] = realloc(c->v, (size_t)cap * sizeof(*v));
	if (!v)
		return hr_error(HR_ENOMEM, "out of memory for %d epochs", epoch);
	for (int e = c->cap; e < cap; e++)
		for (int k = 0; k < C_N; k++)
			v[e][k] = NAN;
	c->v = v;
	c->cap = cap;
	return 0;
}

/* One metrics line (number n of path) into c. */
static int take_line(struct curves *c, const char *path, long n, const char *text)
{
	json_error_t jerr;
	json_t *o = json_loads(text, 0, &jerr);
	int rc = 0;

	if (!o || !json_is_object(o)) {
		json_decref(o);
		return hr_error(HR_EFORMAT, "%s: line %ld is not a JSON object%s%s", path, n,
				o ? "" : ": ", o ? "" : jerr.text);
	}
	const char *split = json_string_value(json_object_get(o, "split"));
	json_t *ep = json_object_get(o, "epoch"), *model = json_object_get(o, "model");
	if (json_object_get(o, "best_epoch") || !split) {
		json_decref(
			o); /* a closing line repeats its best epoch; other lines carry no epoch */
		return 0;
	}
	if (!json_is_integer(ep) || json_integer_value(ep) < 0 ||
	    json_integer_value(ep) > EPOCH_MAX) {
		json_decref(o);
		return hr_error(HR_EFORMAT, "%s: line %ld: \"epoch\" is not an integer in 0..%d",
				path, n, EPOCH_MAX);
	}
	int e = (int)json_integer_value(ep);
	rc = grow(c, e);
	if (!rc && json_is_string(model))
		snprintf(c->model, sizeof(c->model), "%s", json_string_value(model));
	for (int k = 0; !rc && k < C_N; k++) {
		if (cols[k].split[0] && strcmp(cols[k].split, split))
			continue;
		json_t *x = json_object_get(o, cols[k].key);
		if (x && !json_is_number(x) && !json_is_null(x)) {
			rc = hr_error(HR_EFORMAT, "%s: line %ld: \"%s\" is not a number", path, n,
				      cols[k].key);
			break;
		}
		if (json_is_number(x)) {
			c->v[e][k] = json_number_value(x);
			c->has[k] = 1;
		}
	}
	if (!rc && e > c->last)
		c->last = e;
	json_decref(o);
	return rc;
}

static int read_metrics(struct curves *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	int rc = 0;

	if (!f)
		return hr_error(errno == ENOENT ? HR_ENOENT : HR_EIO, "cannot read '%s': %s", path,
				strerror(errno));
	while (!rc && getline(&line, &cap, f) >= 0) {
		n++;
		if (line[strspn(line, " \t\r\n")])
			rc = take_line(c, path, n, line);
	}
	if (!rc && ferror(f))
		rc = hr_error(HR_EIO, "cannot read '%s': %s", path, strerror(errno));
	free(line);
	fclose(f);
	if (!rc && c->last == 0)
		rc = hr_error(HR_EFORMAT, "%s has no epoch's metrics", path);
	return rc;
}

static int write_data(const struct curves *c, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return hr_error(HR_EIO, "cannot create '%s': %s", path, strerror(errno));
	fputs("# epoch", f);
	for (int k = 0; k < C_N; k++)
		fprintf(f, "\t%s%s%s", cols[k].split, cols[k].split[0] ? ":" : "", cols[k].key);
	fputc('\n', f);
	for (int e = 1; e <= c->last; e++) {
		fprintf(f, "%d", e);
		for (int k = 0; k < C_N; k++) {
			if (isnan(c->v[e][k]))
				fputs("\t?", f);
			else
				fprintf(f, "\t%.6g", c->v[e][k]);
		}
		fputc('\n', f);
	}
	if (ferror(f) | (fclose(f) != 0))
		return hr_error(HR_EIO, "cannot write '%s'", path);
	return 0;
}

/* Appends `, DAT using 1:col ...` (plot on the first) for column k when c has it. */
static void series(FILE *g, const struct curves *c, int *first, int k, const char *title,
		   const char *style)
{
	if (!c->has[k])
		return;
	fprintf(g, "%sDAT using 1:%d with %s title '%s'", *first ? "plot " : ", ", k + 2, style,
		title);
	*first = 0;
}

/* Ends a panel's plot command, or draws an empty panel saying why. */
static void end_plot(FILE *g, int empty, const char *why)
{
	if (!empty) {
		fputc('\n', g);
		return;
	}
	fprintf(g,
		"set label 9 '%s' at graph 0.5,0.5 center\n"
		"set yrange [0:1]\nplot -1 notitle\nset autoscale y\nunset label 9\n",
		why);
}

/* gnuplot quotes: no single quotes in what goes between them. */
static void quote_safe(char *s)
{
	for (; *s; s++)
		if (*s == '\'' || *s == '\\' || (unsigned char)*s < 0x20)
			*s = '_';
}

static int write_script(const struct curves *c, const char *gp, const char *dat,
			const char *svg_tmp, const char *run)
{
	FILE *g = fopen(gp, "w");
	char title[PATH_MAX + 80], d[PATH_MAX + 8], o[PATH_MAX + 32];
	int first;

	if (!g)
		return hr_error(HR_EIO, "cannot create '%s': %s", gp, strerror(errno));
	char name[PATH_MAX];
	size_t len = strlen(run);
	while (len > 1 && run[len - 1] == '/') /* the run's name: its last component */
		len--;
	snprintf(name, sizeof(name), "%.*s", (int)len, run);
	const char *base = strrchr(name, '/');
	snprintf(title, sizeof(title), "hogrec: %s, run %s", c->model[0] ? c->model : "model",
		 base && base[1] ? base + 1 : name);
	snprintf(d, sizeof(d), "%s", dat);
	snprintf(o, sizeof(o), "%s", svg_tmp);
	quote_safe(title);
	quote_safe(d);
	quote_safe(o);
	fprintf(g,
		"# bin/trainer report: edit and rerun with `gnuplot %s`\n"
		"DAT = '%s'\n"
		"set terminal svg size 1100,760 dynamic noenhanced font 'sans,11' background rgb 'white'\n"
		"set output '%s'\n"
		"set datafile missing '?'\n"
		"set datafile separator '\\t'\n"
		"set key below\n"
		"set grid\n"
		"set xlabel 'epoch'\n"
		"set xrange [0.5:%d.5]\n"
		"set xtics 1\n"
		"set multiplot layout 2,2 title '%s'\n",
		gp, d, o, c->last, title);
	/* 1: train loss */
	fputs("set title 'train loss'\nunset ylabel\n", g);
	first = 1;
	series(g, c, &first, C_LOSS, "train loss", "linespoints lw 2");
	end_plot(g, first, "no train loss in these lines");
	/* 2: accuracy */
	int rating = c->has[C_V_RMSE] || c->has[C_T_RMSE];
	fprintf(g, "set title '%s'\n", rating ? "RMSE (lower is better)" : "AUC");
	first = 1;
	if (rating) {
		series(g, c, &first, C_V_RMSE, "valid", "linespoints lw 2");
		series(g, c, &first, C_T_RMSE, "test", "linespoints lw 2");
		series(g, c, &first, C_BASE_RMSE, "item means (valid)", "lines dt 2");
	} else {
		series(g, c, &first, C_V_AUC, "valid", "linespoints lw 2");
		series(g, c, &first, C_T_AUC, "test", "linespoints lw 2");
		series(g, c, &first, C_V_SAMPLED, "valid, sampled", "linespoints lw 2");
		series(g, c, &first, C_BASE_AUC, "popularity (valid)", "lines dt 2");
	}
	end_plot(g, first, "no accuracy in these lines");
	/* 3: speed */
	fputs("set title 'training samples/s'\n", g);
	first = 1;
	series(g, c, &first, C_SAMPLES, "samples/s", "linespoints lw 2");
	end_plot(g, first, "no speed in these lines");
	/* 4: ranking */
	fputs("set title 'Recall@K on valid (whole catalogue)'\n", g);
	first = 1;
	series(g, c, &first, C_R10, "@10", "linespoints lw 2");
	series(g, c, &first, C_R20, "@20", "linespoints lw 2");
	series(g, c, &first, C_R50, "@50", "linespoints lw 2");
	series(g, c, &first, C_R100, "@100", "linespoints lw 2");
	series(g, c, &first, C_POP_R10, "popular @10", "lines dt 2");
	series(g, c, &first, C_KNN_R10, "item-kNN @10", "lines dt 3");
	series(g, c, &first, C_IALS_R10, "iALS @10", "lines dt 4");
	end_plot(g, first, "no ranking metrics: train with --rank-metrics yes");
	fputs("unset multiplot\nset output\n", g);
	if (ferror(g) | (fclose(g) != 0))
		return hr_error(HR_EIO, "cannot write '%s'", gp);
	return 0;
}

/* Whether an executable `name` is on PATH. */
static int on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	for (const char *p = path ? path : ""; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && n + strlen(name) + 2 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
			if (access(buf, X_OK) == 0)
				return 1;
		}
		p += n + (p[n] == ':');
	}
	return 0;
}

static int run_gnuplot(const char *gp)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return hr_error(HR_EIO, "cannot start gnuplot: %s", strerror(errno));
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", gp, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return hr_error(HR_EIO, "waiting for gnuplot: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		hr_error(HR_EIO, "gnuplot failed on '%s' (its message above)", gp);
		return 1; /* exit 70, not an I/O error's 74 */
	}
	return 0;
}

static void report_usage(FILE *out)
{
	fputs("usage: trainer report RUN_DIR [-o OUT.svg]\n"
	      "\n"
	      "Draws RUN_DIR's learning curves from its metrics.jsonl as one SVG (default\n"
	      "RUN_DIR/report.svg): train loss, valid and test AUC (RMSE for rating\n"
	      "models) beside the popularity baseline, training samples/s, and Recall@K\n"
	      "on valid beside the popular, item-kNN and iALS baselines (runs with\n"
	      "--rank-metrics yes).  gnuplot draws it (make deps installs gnuplot-nox);\n"
	      "its data and script are left beside the output (OUT.dat, OUT.gp).\n"
	      "\n"
	      "exit status: 0 ok, 64 bad usage, 65 a malformed metrics line, 66 RUN_DIR or\n"
	      "its metrics.jsonl missing, 69 gnuplot not installed, 70 gnuplot failed, 74\n"
	      "the output could not be written.\n",
	      out);
}

int report_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	char metrics[PATH_MAX], svg[PATH_MAX], tmp[PATH_MAX + 32], gp[PATH_MAX + 8],
		dat[PATH_MAX + 8];
	struct curves c = {0};
	struct stat sb;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'h': report_usage(stdout); return 0;
		default: log_error("bad option (see trainer report --help)"); return 64;
		}
	}
	if (optind + 1 != argc) {
		log_error("report takes one RUN_DIR (see trainer report --help)");
		return 64;
	}
	const char *run = argv[optind];
	if (stat(run, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		log_error("no run directory '%s'", run);
		return 66;
	}
	if ((size_t)snprintf(metrics, sizeof(metrics), "%s/metrics.jsonl", run) >=
		    sizeof(metrics) ||
	    (size_t)snprintf(svg, sizeof(svg), "%s", out ? out : run) >= sizeof(svg) - 16) {
		log_error("path too long: '%s'", run);
		return 64;
	}
	if (!out)
		strcat(svg, "/report.svg");
	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", svg, (long)getpid());
	snprintf(gp, sizeof(gp), "%s.gp", svg);
	snprintf(dat, sizeof(dat), "%s.dat", svg);
	rc = read_metrics(&c, metrics);
	if (!rc && !on_path("gnuplot")) {
		free(c.v);
		log_error("gnuplot is not installed (Debian: gnuplot-nox; make deps installs it)");
		return 69;
	}
	if (!rc)
		rc = write_data(&c, dat);
	if (!rc)
		rc = write_script(&c, gp, dat, tmp, run);
	if (!rc)
		rc = run_gnuplot(gp);
	if (!rc && rename(tmp, svg) < 0)
		rc = hr_error(HR_EIO, "cannot publish '%s': %s", svg, strerror(errno));
	if (rc)
		unlink(tmp);
	free(c.v);
	if (rc) {
		log_error("%s", hr_errmsg());
		return rc == 1 ? 70 : hr_exit_code(rc);
	}
	log_info("wrote %s (%d epochs)", svg, c.last);
	return 0;
}
