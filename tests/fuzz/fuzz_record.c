/* libFuzzer target: the store record decoder must reject any bytes cleanly. */
#include <stddef.h>
#include <stdint.h>

#include "store/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t hist[64], neg[64];
	struct record r = {.hist = hist, .neg = neg, .hist_cap = 64};

	record_unpack(data, size, &r);
	return 0;
}
