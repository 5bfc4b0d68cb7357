/* libFuzzer target: ckpt_open must reject any file cleanly (checkpoints are read back after crashes). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "trainer/ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64];
	struct ckpt *c;

	if (fd < 0) {
		log_init("fuzz_ckpt", LOG_ERROR);
		fd = memfd_create("ckpt", 0);
	}
	if (fd < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (ckpt_open(&c, path) == 0) {
		/* A file that validates: every float of every tensor must be readable. */
		volatile float sink = 0;
		for (int i = 0; i < ckpt_ntensors(c); i++) {
			uint64_t rows, cols;
			const float *t = ckpt_tensor_at(c, i, &rows, &cols);
			for (uint64_t k = 0; k < rows * cols; k++)
				sink += t[k];
		}
		(void)sink;
		ckpt_close(c);
	}
	return 0;
}
