#include "build.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/progress.h"
#include "seq.h"
#include "store/codec.h"

#define COMMIT_EVERY 131072 /* records per write transaction */
#define CHECK_EVERY 4096    /* records between two looks at the stop flag */

volatile sig_atomic_t ingest_cancel;

struct scan {
	struct dense_state dense;
	struct hist hist;
	struct neg_sampler neg;
	uint32_t *hbuf, *nbuf, *nitems;
	msgpack_sbuffer buf;
};

static void scan_release(struct scan *s)
{
	dense_release(&s->dense);
	hist_release(&s->hist);
	neg_release(&s->neg);
	free(s->hbuf);
	free(s->nbuf);
	free(s->nitems);
	msgpack_sbuffer_destroy(&s->buf);
}

static int scan_init(struct scan *s, const struct build_input *in)
{
	size_t nu = in->ds->n_users, ni = in->ds->n_items;
	uint32_t L = in->opts->hist_len;
	int rc;

	memset(s, 0, sizeof(*s));
	msgpack_sbuffer_init(&s->buf);
	rc = dense_init(&s->dense, nu, ni);
	if (!rc)
		rc = hist_init(&s->hist, nu, L);
	if (!rc)
		rc = neg_init(&s->neg, in->ev, in->n, nu, ni);
	if (!rc) {
		s->hbuf = malloc((L + 1) * sizeof(uint32_t));
		s->nbuf = malloc((L + 1) * sizeof(uint32_t));
		s->nitems = malloc((L + 1) * sizeof(uint32_t));
		if (!s->hbuf || !s->nbuf || !s->nitems)
			rc = hr_error(HR_ENOMEM, "out of memory for sequence buffers");
	}
	if (rc)
		scan_release(s);
	return rc;
}

/* Fills r for event index i from the state as it stands (before i's second). */
static void assemble(struct scan *s, const struct build_input *in, size_t i, struct record *r)
{
	const struct event *e = &in->ev[i];
	const struct encoding *enc = in->enc;
	float raw[DENSE_N];
	struct rng rng;

	r->user_raw = in->ds->users[e->user].raw_id;
	r->item_raw = in->ds->items[e->item].raw_id;
	r->rating = (float)e->stars2 * 0.5f;
	r->ts = e->ts;
	r->label = (uint32_t)e->label;
	r->user = enc->user_code[e->user];
	r->item = enc->item_code[e->item];
	r->gender = enc->gender_code[e->user];
	r->age = enc->age_code[e->user];
	r->occupation = enc->occ_code[e->user];
	r->zip = enc->zip_code[e->user];
	r->n_genres = enc->n_item_genres[e->item];
	memcpy(r->genres, enc->item_genres[e->item], r->n_genres * sizeof(uint32_t));
	dense_raw(&s->dense, e->user, e->item, raw);
	r->n_dense = DENSE_N;
	scaler_apply(in->sc, raw, r->dense, 0, DENSE_N);
	r->hist = s->hbuf;
	r->n_hist = hist_get(&s->hist, e->user, s->hbuf);
	/* One stream per event position: draws do not depend on anything else. */
	rng_seed(&rng, in->opts->seed, i);
	r->neg = s->nbuf;
	r->n_neg = neg_sample(&s->neg, &rng, e->user, e->item, r->n_hist, s->nitems);
	for (uint32_t k = 0; k < r->n_neg; k++)
		s->nbuf[k] = enc->item_code[s->nitems[k]];
}

/* Applies the events of one second to the scan state. */
static void apply_run(struct scan *s, const struct build_input *in, size_t a, size_t b)
{
	for (size_t i = a; i < b; i++) {
		const struct event *e = &in->ev[i];
		neg_mark_rated(&s->neg, e->user, e->item);
		if (e->label == 1)
			hist_push(&s->hist, e->user, in->enc->item_code[e->item]);
		if (e->split == SPLIT_TRAIN) {
			dense_apply(&s->dense, e);
			neg_pool_add(&s->neg, e->item);
		}
	}
}

static void count_record(struct ingest_report *rep, const struct record *r, int split, uint32_t L,
			 double *hist_sum)
{
	rep->records[split]++;
	rep->positives[split] += r->label == 1;
	rep->unseen_user[split] += r->user == 0;
	rep->unseen_item[split] += r->item == 0;
	*hist_sum += r->n_hist;
	rep->hist_full += r->n_hist == L;
	rep->hist_empty += r->n_hist == 0;
	rep->neg_short += r->n_neg < r->n_hist;
}

int build_records(const struct build_input *in, struct store *st, struct ingest_report *rep)
{
	struct scan s;
	struct record r;
	struct progress bar;
	uint64_t next_key[3] = {0, 0, 0};
	size_t written = 0, total = 0;
	double hist_sum = 0;
	int rc = scan_init(&s, in);

	if (rc)
		return rc;
	for (int k = 0; k < 3; k++)
		total += in->split->n[k];
	progress_begin(&bar, "records", total);
	for (size_t a = 0, b; a < in->n && !rc; a = b) {
		for (b = a; b < in->n && in->ev[b].ts == in->ev[a].ts; b++) {
			int sp = in->ev[b].split;
			uint8_t key[8];
			if (sp == SPLIT_NONE)
				continue;
			assemble(&s, in, b, &r);
			msgpack_sbuffer_clear(&s.buf);
			rc = record_pack(&s.buf, &r);
			if (rc)
				break;
			store_key(key, next_key[sp]++);
			rc = store_put(st, STORE_TRAIN + sp, key, 8, s.buf.data, s.buf.size, 1);
			if (rc)
				break;
			count_record(rep, &r, sp, in->opts->hist_len, &hist_sum);
			if (++written % CHECK_EVERY == 0) {
				fault_point("ingest.records"); /* mid-write, for signal tests */
				if (ingest_cancel) {
					rc = hr_error(HR_ECANCEL, "interrupted");
					break;
				}
			}
			if (written % COMMIT_EVERY == 0) {
				rc = store_commit(st, 0);
				if (rc)
					break;
				progress_update(&bar, written);
			}
			if (in->opts->fault_after && written >= in->opts->fault_after) {
				rc = hr_error(HR_EIO, "injected fault after %zu records", written);
				break;
			}
		}
		if (!rc)
			apply_run(&s, in, a, b);
	}
	progress_end(&bar);
	if (!rc)
		rc = store_commit(st, 0);
	rep->hist_mean = written ? hist_sum / (double)written : 0;
	scan_release(&s);
	return rc;
}
