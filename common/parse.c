#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#include "common/err.h"

int parse_u64_quiet(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1; /* strtoull would take spaces, a sign or nothing */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int parse_f64_quiet(const char *s, double *out)
{
	char *end;
	double x;

	if (!*s || isspace((unsigned char)s[0]))
		return -1;
	errno = 0;
	x = strtod(s, &end);
	if (*end || !isfinite(x) || (errno == ERANGE && fabs(x) > 1.0))
		return -1; /* an underflow to 0 or a subnormal is a fine number */
	*out = x;
	return 0;
}

int parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v;

	if (parse_u64_quiet(s, &v) || v < lo || v > hi)
		return hr_error(HR_EINVAL, "%s: '%s' is not an integer between %llu and %llu", what,
				s, (unsigned long long)lo, (unsigned long long)hi);
	*out = v;
	return 0;
}

int parse_f64(const char *s, const char *what, double lo, double hi, double *out)
{
	double x;

	if (parse_f64_quiet(s, &x) || !(x >= lo && x <= hi))
		return hr_error(HR_EINVAL, "%s: '%s' is not a number between %g and %g", what, s,
				lo, hi);
	*out = x;
	return 0;
}

int parse_bool(const char *s)
{
	static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
										    "off", "0"};

	for (size_t k = 0; k < sizeof(yes) / sizeof(yes[0]); k++) {
		if (!strcasecmp(s, yes[k]))
			return 1;
		if (!strcasecmp(s, no[k]))
			return 0;
	}
	return -1;
}
