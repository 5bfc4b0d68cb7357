/*
 * genstore.h - a generated data set (bin/mlgen's generator) ingested into a
 * store in a fresh temporary directory, for unit tests that read a real
 * store: genstore_setup() from a cmocka group setup, genstore_teardown()
 * from its teardown.  One store per test program (static storage): dir
 * holds both, data the MovieLens files, storep the store.
 */
#ifndef HR_TEST_GENSTORE_H
#define HR_TEST_GENSTORE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "ingest/ingest.h"
#include "ingest/mlgen.h"

static char dir[256], data[300], storep[300];

/* 0, or -1 when the directory, the data or the store cannot be made. */
static inline int genstore_setup(const char *name, uint32_t users, uint32_t items, uint64_t ratings,
				 uint64_t seed)
{
	struct mlgen_opts g;
	struct ingest_opts o;
	struct ingest_report rep;

	log_init("test", LOG_WARN);
	snprintf(dir, sizeof(dir), "/tmp/hogrec-test-%s-XXXXXX", name);
	if (!mkdtemp(dir))
		return -1;
	snprintf(data, sizeof(data), "%s/ml", dir);
	snprintf(storep, sizeof(storep), "%s/ml.lmdb", dir);
	mlgen_defaults(&g);
	g.users = users;
	g.items = items;
	g.ratings = ratings;
	g.seed = seed;
	ingest_opts_defaults(&o);
	o.in_dir = data;
	o.out_path = storep;
	return mlgen_write(&g, data) || ingest_run(&o, &rep) ? -1 : 0;
}

static inline int genstore_teardown(void)
{
	return remove_tree(dir);
}

#endif
