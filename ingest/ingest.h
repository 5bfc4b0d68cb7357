/*
 * ingest.h - the whole ingest pipeline: MovieLens directory -> store.
 *
 *   read (readers.h) -> label -> sort by time -> split -> encode (train)
 *   -> dense scaler (train) -> one time-ordered scan building each record's
 *   dense features, history and negative history, written straight into the
 *   store -> users/items/vocab/meta -> atomic publish (publish.h).
 *
 * ingest_run() either publishes a complete store at opts->out_path or
 * leaves the file system as it found it (an existing store there is never
 * touched unless the new one is complete).
 */
#ifndef HR_INGEST_H
#define HR_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "label.h"
#include "split.h"

/* The longest history (--hist-len) a store may hold. */
#define INGEST_HIST_MAX 4096

struct ingest_opts {
	const char *in_dir;
	const char *out_path;
	int force; /* replace an existing store at out_path */
	struct label_rule label;
	struct split_opts split;
	uint32_t hist_len; /* L, 1..INGEST_HIST_MAX */
	uint64_t seed;
	int zip_prefix;
	size_t max_errors;  /* malformed lines that may be skipped */
	size_t fault_after; /* testing: fail with HR_EIO after this many records (0 = never) */
};

enum ingest_stage {
	STAGE_READ,
	STAGE_LABEL,
	STAGE_SORT,
	STAGE_SPLIT,
	STAGE_ENCODE,
	STAGE_DENSE,
	STAGE_BUILD,
	STAGE_TABLES,
	STAGE_PUBLISH,
	STAGE_N
};

struct ingest_report {
	enum ds_format format;
	size_t ratings, skipped, dropped;
	size_t users, items; /* in the input */
	size_t records[3], positives[3];
	size_t unseen_user[3], unseen_item[3]; /* records whose user/item is not in train */
	uint32_t vocab_users, vocab_items;     /* including id 0 */
	double hist_mean;
	size_t hist_full, hist_empty; /* records with L / 0 history items */
	size_t neg_short;             /* records whose neg_hist is shorter than hist */
	uint32_t train_end_ts, valid_end_ts;
	uint64_t store_bytes;
	double seconds[STAGE_N];
	double seconds_total;
};

/* Set from a signal handler to stop ingest; it cleans up and returns HR_ECANCEL. */
extern volatile sig_atomic_t ingest_cancel;

/* Fills the defaults: explicit 4/2 labels, global 80/10/10, L = 50, seed 1, zip 3. */
void ingest_opts_defaults(struct ingest_opts *o);

/*
 * Runs the pipeline from o->in_dir to o->out_path and fills rep.  Checks,
 * in this order and before anything is written: the options (HR_EINVAL),
 * the input directory and its files (ds_check_dir(): HR_ENOENT, HR_EFORMAT,
 * HR_EINVAL), then claims the output (publish.h: HR_EEXIST, HR_EINVAL for a
 * directory that is not a store, HR_EIO).  Later failures are those of the
 * readers and stages, HR_EIO, or HR_ECANCEL once ingest_cancel is set; none
 * leaves a store or a temporary directory behind.
 */
int ingest_run(const struct ingest_opts *o, struct ingest_report *rep);

/* Prints the human summary (several lines) to out. */
void ingest_report_print(FILE *out, const struct ingest_opts *o, const struct ingest_report *rep);
/* Prints the report as one JSON object line. */
void ingest_report_json(FILE *out, const struct ingest_report *rep);

const char *ingest_stage_name(enum ingest_stage s);

#endif
