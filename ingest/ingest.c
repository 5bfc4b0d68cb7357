#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "common/err.h"
#include "common/log.h"
#include "common/progress.h"
#include "order.h"
#include "publish.h"
#include "readers.h"

/* Store growth bound: records are ~10 bytes per history slot plus fields. */
static size_t estimate_mapsize(const struct dataset *ds, uint32_t L)
{
	double per_record = 128.0 + 2.0 * 6.0 * L;
	double bytes = (double)ds->n_ratings * per_record + (double)ds->n_users * (96.0 + 6.0 * L) +
		       (double)ds->n_items * 512.0 + (double)ds->strpool_len;

	return (size_t)(bytes * 1.5) + ((size_t)256 << 20);
}

void ingest_opts_defaults(struct ingest_opts *o)
{
	memset(o, 0, sizeof(*o));
	label_rule_init(&o->label, LABEL_EXPLICIT, 4.0, 2.0);
	o->split.kind = SPLIT_GLOBAL;
	o->split.valid_frac = 0.1;
	o->split.test_frac = 0.1;
	o->hist_len = 50;
	o->seed = 1;
	o->zip_prefix = 3;
}

const char *ingest_stage_name(enum ingest_stage s)
{
	static const char *const names[STAGE_N] = {
		"read", "label", "sort", "split", "encode", "dense", "records", "tables", "publish",
	};
	return names[s];
}

/* Marks the end of stage s: records its duration. */
static void stage_time(struct ingest_report *rep, enum ingest_stage s, double *t)
{
	double now = now_seconds();

	rep->seconds[s] = now - *t;
	*t = now;
	log_debug("stage %s: %.3f s", ingest_stage_name(s), rep->seconds[s]);
	if (s != STAGE_BUILD) /* the record scan draws its own live bar */
		progress_done(ingest_stage_name(s), rep->ratings, rep->seconds[s]);
}

/* stage_time(), then HR_ECANCEL when a signal asked to stop. */
static int stage_done(struct ingest_report *rep, enum ingest_stage s, double *t)
{
	stage_time(rep, s, t);
	return ingest_cancel ? hr_error(HR_ECANCEL, "interrupted") : 0;
}

static int build_store(const struct ingest_opts *o, struct dataset *ds, struct event *ev,
		       struct ingest_report *rep, struct publish *pub, double *t)
{
	struct split_info split;
	struct encoding enc;
	struct scaler sc;
	struct store *st = NULL;
	int rc;

	rc = events_sort(ev, ds->n_ratings, ds);
	if (!rc)
		rc = stage_done(rep, STAGE_SORT, t);
	if (!rc)
		rc = split_assign(ev, ds->n_ratings, ds->n_users, &o->split, &split);
	if (!rc)
		rc = stage_done(rep, STAGE_SPLIT, t);
	if (rc)
		return rc;
	if (split.n[SPLIT_TRAIN] == 0)
		return hr_error(HR_EFORMAT, "'%s': no labelled rating falls in the train split",
				o->in_dir);
	rep->train_end_ts = split.train_end_ts;
	rep->valid_end_ts = split.valid_end_ts;
	rc = encoding_fit(&enc, ds, ev, ds->n_ratings, o->zip_prefix);
	if (rc)
		return rc;
	rep->vocab_users = enc.vocab[ENC_USER].n;
	rep->vocab_items = enc.vocab[ENC_ITEM].n;
	rc = stage_done(rep, STAGE_ENCODE, t);
	if (!rc)
		rc = dense_fit(&sc, ev, ds->n_ratings, ds->n_users, ds->n_items);
	if (!rc)
		rc = stage_done(rep, STAGE_DENSE, t);
	if (!rc)
		rc = store_create(&st, pub->tmp, estimate_mapsize(ds, o->hist_len));
	if (!rc) {
		struct build_input in = {
			.ds = ds,
			.ev = ev,
			.n = ds->n_ratings,
			.enc = &enc,
			.sc = &sc,
			.opts = o,
			.split = &split,
		};
		rc = build_records(&in, st, rep);
		if (!rc)
			rc = stage_done(rep, STAGE_BUILD, t);
		if (!rc)
			rc = build_tables(&in, st, rep);
		if (!rc)
			rc = store_commit(st, 1);
		if (!rc)
			rc = store_size_bytes(st, &rep->store_bytes);
		if (!rc)
			rc = stage_done(rep, STAGE_TABLES, t);
	}
	store_close(st);
	encoding_release(&enc);
	return rc;
}

int ingest_run(const struct ingest_opts *o, struct ingest_report *rep)
{
	struct read_opts ro = {.max_errors = o->max_errors};
	struct publish pub;
	struct dataset ds;
	struct event *ev = NULL;
	enum ds_format fmt;
	double t0 = now_seconds(), t = t0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	if (o->hist_len == 0 || o->hist_len > INGEST_HIST_MAX)
		return hr_error(HR_EINVAL, "--hist-len must be between 1 and %d, not %u",
				INGEST_HIST_MAX, o->hist_len);
	if (o->zip_prefix < 1 || o->zip_prefix >= DS_ZIP_MAX)
		return hr_error(HR_EINVAL, "--zip-prefix must be between 1 and %d", DS_ZIP_MAX - 1);
	rc = split_opts_check(&o->split);
	if (rc)
		return rc;
	/* A missing or unrecognised input is reported before the output is touched. */
	rc = ds_check_dir(o->in_dir, &fmt);
	if (rc)
		return rc;
	/* Claim the output next: a bad target fails before minutes of work. */
	rc = publish_begin(&pub, o->out_path, o->force);
	if (rc)
		return rc;
	rc = dataset_init(&ds);
	if (rc)
		goto out_pub;
	rc = ds_read_dir(&ds, o->in_dir, &ro);
	if (rc)
		goto out;
	rep->format = ds.format;
	rep->ratings = ds.n_ratings;
	rep->skipped = ds.n_skipped;
	rep->users = ds.n_users;
	rep->items = ds.n_items;
	rc = stage_done(rep, STAGE_READ, &t);
	if (!rc)
		rc = label_events(&ds, &o->label, &ev, &rep->dropped);
	if (!rc)
		rc = stage_done(rep, STAGE_LABEL, &t);
	if (!rc)
		rc = build_store(o, &ds, ev, rep, &pub, &t);
	if (!rc)
		rc = publish_commit(&pub);
	/* Once published, a late signal changes nothing: success, not 130. */
	if (!rc)
		stage_time(rep, STAGE_PUBLISH, &t);
	rep->seconds_total = now_seconds() - t0;
out:
	free(ev);
	dataset_release(&ds);
out_pub:
	publish_abort(&pub);
	return rc;
}

static double share(size_t a, size_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

void ingest_report_print(FILE *out, const struct ingest_opts *o, const struct ingest_report *rep)
{
	size_t rec = rep->records[0] + rep->records[1] + rep->records[2];
	size_t pos = rep->positives[0] + rep->positives[1] + rep->positives[2];

	fprintf(out, "store      %s (%.1f MiB)\n", o->out_path,
		(double)rep->store_bytes / 1048576.0);
	fprintf(out, "input      %s, format %s: %zu ratings, %zu users, %zu items\n", o->in_dir,
		ds_format_name(rep->format), rep->ratings, rep->users, rep->items);
	fprintf(out, "rows       read %zu, skipped %zu malformed, dropped %zu neutral, kept %zu\n",
		rep->ratings + rep->skipped, rep->skipped, rep->dropped, rec);
	fprintf(out, "positives  %.1f%% of kept rows\n", share(pos, rec));
	fprintf(out, "vocab      %u users, %u items in train (plus id 0)\n",
		rep->vocab_users ? rep->vocab_users - 1 : 0,
		rep->vocab_items ? rep->vocab_items - 1 : 0);
	for (int s = 0; s < 3; s++)
		fprintf(out,
			"%-10s %zu records (%.1f%%), positive %.1f%%, user unseen in train %.1f%%, item unseen %.1f%%\n",
			split_name(s), rep->records[s], share(rep->records[s], rec),
			share(rep->positives[s], rep->records[s]),
			share(rep->unseen_user[s], rep->records[s]),
			share(rep->unseen_item[s], rep->records[s]));
	fprintf(out,
		"history    L=%u: mean length %.1f, full %.1f%%, empty %.1f%%, short negative %.2f%%\n",
		o->hist_len, rep->hist_mean, share(rep->hist_full, rec),
		share(rep->hist_empty, rec), share(rep->neg_short, rec));
	if (rep->records[1] + rep->records[2] && share(rep->unseen_user[1] + rep->unseen_user[2],
						       rep->records[1] + rep->records[2]) > 20.0)
		fprintf(out, "note       many valid/test rows have users never seen in train; "
			     "a per-user split (--split user) evaluates known users\n");
	fprintf(out, "seconds   ");
	for (int s = 0; s < STAGE_N; s++)
		fprintf(out, " %s %.3f", ingest_stage_name(s), rep->seconds[s]);
	fprintf(out, " | total %.3f (%.0f ratings/s)\n", rep->seconds_total,
		rep->seconds_total > 0 ? (double)rep->ratings / rep->seconds_total : 0.0);
}

void ingest_report_json(FILE *out, const struct ingest_report *rep)
{
	fprintf(out, "{\"ratings\":%zu,\"skipped\":%zu,\"dropped\":%zu", rep->ratings, rep->skipped,
		rep->dropped);
	for (int s = 0; s < 3; s++)
		fprintf(out, ",\"%s\":%zu", split_name(s), rep->records[s]);
	fprintf(out, ",\"store_bytes\":%llu,\"hist_mean\":%.3f,\"seconds_total\":%.4f",
		(unsigned long long)rep->store_bytes, rep->hist_mean, rep->seconds_total);
	fprintf(out, ",\"seconds\":{");
	for (int s = 0; s < STAGE_N; s++)
		fprintf(out, "%s\"%s\":%.4f", s ? "," : "", ingest_stage_name(s), rep->seconds[s]);
	fprintf(out, "}}\n");
}
