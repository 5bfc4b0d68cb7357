/*
 * ckpt_internal.h - what the checkpoint sources (trainer/ckpt_*.c) share
 * and nobody else uses: format constants, test fault injection, file names,
 * the metadata rules and the crc field.  The public interface is ckpt.h.
 */
#ifndef HR_CKPT_INTERNAL_H
#define HR_CKPT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <zlib.h>

#include "ckpt.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints hold little-endian floats; a big-endian port must byte-swap them"
#endif

/* The reference safetensors reader refuses larger headers; so do we. */
#define HEADER_MAX 100000000ULL
/* Tensor bytes are copied through a buffer of this size (see ckpt_save). */
#define CHUNK ((size_t)1 << 20)
#define META "__metadata__"
#define LATEST "latest"
/* Version 2 checksums the file with these bytes' 8 hex digits as "00000000". */
#define CRC_KEY "\"crc32\":\""
#define CRC_ZERO "00000000"

_Static_assert(sizeof(z_off_t) >= 8, "crc32_combine must take 64-bit lengths");

/* Test fault injection (ckpt_fault_inject): the argument, and whether where is armed. */
extern _Atomic uint64_t ckpt_fault_arg;
int ckpt_fault_at(enum ckpt_fault where);
void ckpt_file_name(char *out, size_t n, uint64_t step);
int ckpt_parse_dec(const char *s, size_t n, uint64_t *out);
int ckpt_parse_name(const char *name, uint64_t *step);
int ckpt_check_hogrec(const json_t *doc, struct ckpt_info *in, char *why, size_t cap);
int ckpt_short_text(const json_t *v, size_t max);
size_t ckpt_crc_digits(const char *hdr, size_t n, size_t *at);
uint64_t ckpt_first_nonfinite(const unsigned char *p, uint64_t n);
const char *ckpt_nonfinite_name(const unsigned char *p);
void ckpt_sync_dir_quiet(const char *dir);

#endif
