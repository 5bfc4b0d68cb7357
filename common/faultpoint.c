#include "faultpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_LIMIT_MS 60000

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char armed[128];             /* the point's name; "" when none */
static unsigned long armed_hit = 1; /* pause on this hit (1-based) */
static atomic_ulong hits;
static atomic_int released;

static void on_sigusr1(int sig)
{
	(void)sig;
	fault_point_release();
}

static void arm(void)
{
	const char *env = getenv("HOGREC_PAUSE_AT");
	struct sigaction sa;
	const char *at;
	size_t n;

	if (!env || !*env)
		return;
	at = strchr(env, '@');
	n = at ? (size_t)(at - env) : strlen(env);
	if (n >= sizeof(armed))
		return;
	memcpy(armed, env, n);
	armed[n] = '\0';
	if (at) {
		char *end;
		unsigned long k = strtoul(at + 1, &end, 10);
		if (*end || k == 0) {
			fprintf(stderr,
				"hogrec: ignoring HOGREC_PAUSE_AT='%s' (want NAME or NAME@N)\n",
				env);
			armed[0] = '\0';
			return;
		}
		armed_hit = k;
	}
	/* Armed: SIGUSR1 resumes the pause without stopping the program. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

void fault_point(const char *name)
{
	pthread_once(&once, arm);
	if (!armed[0] || strcmp(name, armed) != 0)
		return;
	/* hits pairs with nothing: it only counts; each hit gets its own number. */
	if (atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed) + 1 != armed_hit)
		return;
	fprintf(stderr, "hogrec: paused at %s (pid %ld)\n", name, (long)getpid());
	fflush(stderr);
	for (int ms = 0; ms < PAUSE_LIMIT_MS; ms += 5) {
		/* acquire pairs with the release in fault_point_release(). */
		if (atomic_load_explicit(&released, memory_order_acquire))
			return;
		nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
	}
	fprintf(stderr, "hogrec: pause at %s timed out\n", name);
}

void fault_point_release(void)
{
	/* release pairs with the acquire in fault_point()'s wait. */
	atomic_store_explicit(&released, 1, memory_order_release);
}
