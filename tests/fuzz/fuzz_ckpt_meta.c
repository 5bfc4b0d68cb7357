/*
 * libFuzzer target: checkpoint metadata.  The input is the header JSON of a
 * checkpoint whose tensor bytes are fixed (w: 2 x 3, b: 1 x 3, 36 bytes; the
 * seed is the header of that valid checkpoint).  The file is laid out as
 * ckpt_save does (length, header padded to 8, payload) and, when the input
 * holds "crc32":"<8 bytes>" once (and no "version":"1"), resealed with the
 * right version 2 crc, so
 * mutations reach every metadata, hogrec and tensor-entry check behind the
 * checksum.  ckpt_open must refuse cleanly or give a checkpoint whose
 * values honour ckpt.h's bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "common/err.h"
#include "common/log.h"
#include "trainer/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const float payload[9] = {0.5f, -1.0f, 2.0f, 0.25f, 3.0f, -0.75f, 0.0f, 1.0f, -2.0f};

/* The crc32's 8 digits after the one "crc32":" of the header, resealed. */
static void reseal(unsigned char *b, size_t hlen, size_t len)
{
	static const char key[] = "\"crc32\":\"";
	const unsigned char *p = b + 8, *at = NULL;
	size_t n = 0;
	char hex[9];

	while ((p = memmem(p, hlen - (size_t)(p - (b + 8)), key, 9)) != NULL) {
		at = p + 9;
		n++;
		p++;
	}
	if (n != 1 || at + 8 > b + 8 + hlen)
		return;
	size_t off = (size_t)(at - b);
	memcpy(b + off, "00000000", 8);
	snprintf(hex, sizeof(hex), "%08lx", crc32(0, b, (uInt)len));
	memcpy(b + off, hex, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	size_t pad = (8 - size % 8) % 8, hlen = size + pad, len = 8 + hlen + sizeof(payload);
	unsigned char *b;
	char path[64];
	struct ckpt *c;

	if (fd < 0) {
		log_init("fuzz_ckpt_meta", LOG_ERROR);
		fd = memfd_create("ckpt", 0);
	}
	if (fd < 0 || !(b = malloc(len)))
		return 0;
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	memcpy(b + 8, data, size);
	memset(b + 8 + size, ' ', pad);
	memcpy(b + 8 + hlen, payload, sizeof(payload));
	if (!memmem(data, size, "\"version\":\"1\"", 13)) /* version 1: the payload's crc */
		reseal(b, hlen, len);
	if (ftruncate(fd, 0) == 0 && pwrite(fd, b, len, 0) == (ssize_t)len) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (ckpt_open(&c, path) == 0) {
			const struct ckpt_info *in = ckpt_get_info(c);
			if (in->epoch > CKPT_EPOCH_MAX || in->step > CKPT_COUNT_MAX ||
			    in->samples > CKPT_COUNT_MAX || in->created < 0 ||
			    in->created > CKPT_CREATED_MAX ||
			    (in->has_next_batch && in->next_batch > CKPT_COUNT_MAX) ||
			    !in->model[0] || (in->version != 1 && in->version != 2))
				abort();
			for (int i = 0; i < ckpt_ntensors(c); i++) {
				uint64_t rows, cols;
				const float *t = ckpt_tensor_at(c, i, &rows, &cols);
				for (uint64_t k = 0; k < rows * cols; k++)
					if (!(t[k] - t[k] == 0)) /* finite */
						abort();
			}
			ckpt_close(c);
		}
	}
	free(b);
	return 0;
}
