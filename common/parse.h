/*
 * parse.h - strict parsing of the numbers users type: command-line options
 * and config values.  One place, one rule:
 *
 *   - the whole string is the number: no leading or trailing spaces, no
 *     trailing text ("12abc", "" and " 12" are refused);
 *   - integers are decimal digits only (no sign, no "0x"), and a value that
 *     does not fit 64 bits is refused, never wrapped or clamped;
 *   - reals are what strtod(3) reads, finite (no "nan", "inf");
 *   - the value must lie in [lo, hi], and the message says so.
 *
 * Errors: HR_EINVAL with the message "WHAT: 'TEXT' is not an integer
 * between LO and HI" (or "a number between"), where WHAT names the option
 * or key (e.g. "--hist-len").  The output is written only on success.
 */
#ifndef HR_PARSE_H
#define HR_PARSE_H

#include <stdint.h>

int parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi, uint64_t *out);
int parse_f64(const char *s, const char *what, double lo, double hi, double *out);

/* The same checks without a message: 0 on success, -1 otherwise. */
int parse_u64_quiet(const char *s, uint64_t *out);
int parse_f64_quiet(const char *s, double *out);

/* A boolean: yes/true/on/1 -> 1, no/false/off/0 -> 0 (any case), else -1. */
int parse_bool(const char *s);

#endif
