#include "team.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "err.h"

struct team {
	pthread_mutex_t mu;
	pthread_cond_t go;   /* a new job (gen moved) or stop */
	pthread_cond_t done; /* pending reached 0 */
	uint64_t gen;        /* jobs posted so far */
	int pending;         /* helpers still running the current job */
	int stop;
	team_fn fn;
	void *arg;
	int helpers, started;
	void (*thread_init)(void);
	struct helper {
		struct team *t;
		int part;
		pthread_t thread;
	} * h;
};

static void *helper_main(void *p)
{
	struct helper *h = p;
	struct team *t = h->t;
	uint64_t seen = 0;

	if (t->thread_init)
		t->thread_init();
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (t->gen == seen && !t->stop)
			pthread_cond_wait(&t->go, &t->mu);
		if (t->stop)
			break;
		seen = t->gen;
		team_fn fn = t->fn;
		void *arg = t->arg;
		pthread_mutex_unlock(&t->mu);
		fn(arg, h->part, t->helpers + 1);
		pthread_mutex_lock(&t->mu);
		if (--t->pending == 0)
			pthread_cond_signal(&t->done);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int team_start(struct team **out, int helpers, void (*thread_init)(void))
{
	struct team *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t || helpers < 0 || !(t->h = calloc((size_t)helpers + 1, sizeof(*t->h)))) {
		free(t);
		return hr_error(HR_ENOMEM, "out of memory for %d helper threads", helpers);
	}
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->go, NULL);
	pthread_cond_init(&t->done, NULL);
	t->helpers = helpers;
	t->thread_init = thread_init;
	for (int k = 0; k < helpers; k++) {
		t->h[k] = (struct helper){.t = t, .part = k + 1};
		if (pthread_create(&t->h[k].thread, NULL, helper_main, &t->h[k])) {
			t->helpers = k; /* the ones started are stopped and joined */
			team_stop(t);
			return hr_error(HR_EIO, "cannot start helper thread %d", k + 1);
		}
		t->started = k + 1;
	}
	*out = t;
	return 0;
}

int team_parts(const struct team *t)
{
	return t ? t->helpers + 1 : 1;
}

void team_run(struct team *t, team_fn fn, void *arg)
{
	if (!t || !t->helpers) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&t->mu);
	t->fn = fn;
	t->arg = arg;
	t->pending = t->helpers;
	t->gen++;
	pthread_cond_broadcast(&t->go);
	pthread_mutex_unlock(&t->mu);
	fn(arg, 0, t->helpers + 1);
	pthread_mutex_lock(&t->mu);
	while (t->pending)
		pthread_cond_wait(&t->done, &t->mu);
	pthread_mutex_unlock(&t->mu);
}

void team_stop(struct team *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_broadcast(&t->go);
	pthread_mutex_unlock(&t->mu);
	for (int k = 0; k < t->started; k++)
		pthread_join(t->h[k].thread, NULL);
	pthread_cond_destroy(&t->done);
	pthread_cond_destroy(&t->go);
	pthread_mutex_destroy(&t->mu);
	free(t->h);
	free(t);
}
