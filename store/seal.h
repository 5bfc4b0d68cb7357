/*
 * seal.h - what store_open() checks before LMDB maps a store's data.mdb,
 * and the seal that makes those checks meaningful (docs/FORMAT.md, "The
 * seal"; docs/ARCHITECTURE.md, "Hostile stores").  Internal to store/.
 *
 * LMDB trusts its pages: a flipped byte in a branch page sends a cursor to
 * a wild address, a truncated file faults with SIGBUS, a FIFO blocks the
 * open for ever.  So a store is verified from the outside first, by plain
 * reads that cannot fault: the files are regular, data.mdb's two meta pages
 * are LMDB meta pages and the file holds every page they claim, and the
 * whole file's crc32 equals the one bin/ingest wrote beside it in data.crc
 * when it committed the store.
 *
 * Errors: HR_ESTORE with a message naming the store and the file (65 in
 * every program), HR_EIO when a read fails, HR_ENOMEM.
 */
#ifndef HR_STORE_SEAL_H
#define HR_STORE_SEAL_H

#include <stdint.h>

#include "store.h" /* STORE_SEAL_FILE */

/*
 * Checks the store directory dir without mapping anything: data.mdb and,
 * when present, lock.mdb are regular files (a FIFO is refused, never
 * opened in a way that blocks); data.mdb's meta pages and size agree; its
 * size and crc32 are those data.crc records.  Reads all of data.mdb once
 * (~0.1 s per 200 MB from the page cache).
 */
int store_seal_verify(const char *dir);

/*
 * Writes dir/data.crc for dir/data.mdb as it now is (the store must be
 * committed and synced; any later write breaks the seal) and fsyncs it.
 */
int store_seal_write(const char *dir);

/*
 * The crc32 (zlib's, as Python's zlib.crc32) and size of the file path,
 * read with pread (a truncated or growing file cannot fault).  HR_EIO.
 */
int store_file_crc32(const char *path, uint32_t *crc, uint64_t *size);

#endif
