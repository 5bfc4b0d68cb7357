/*
 * build.h - the record scan and the table writers behind ingest_run().
 *
 * build_records() walks the time-sorted events once, one same-second run at
 * a time: it first assembles and writes a record for every labelled event
 * of the run, reading dense statistics, histories and rated sets as they
 * stood before that second, and only then applies the run's events to that
 * state.  That order is what makes every feature strictly earlier than its
 * record.
 */
#ifndef HR_BUILD_H
#define HR_BUILD_H

#include "dense.h"
#include "encode.h"
#include "ingest.h"
#include "store/store.h"

struct build_input {
	const struct dataset *ds;
	const struct event *ev;
	size_t n;
	const struct encoding *enc;
	const struct scaler *sc;
	const struct ingest_opts *opts;
	const struct split_info *split;
};

/* Writes every train/valid/test record and fills the record statistics of rep. */
int build_records(const struct build_input *in, struct store *st, struct ingest_report *rep);

/* Writes the vocab, users, items and meta databases. */
int build_tables(const struct build_input *in, struct store *st, const struct ingest_report *rep);

#endif
