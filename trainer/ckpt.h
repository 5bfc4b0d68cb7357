/*
 * ckpt.h - crash-safe checkpoint files and the directory that holds them.
 *
 * A checkpoint is one safetensors file (docs/FORMAT.md, "Checkpoints"): an
 * 8-byte little-endian header length, a JSON header naming every tensor
 * (float32, 2-D) and carrying hogrec's metadata as strings, then the raw
 * tensor bytes.  Any safetensors reader can load the weights; hogrec adds a
 * crc32 of the whole file (version 2: header and tensor bytes; version 1,
 * still read: tensor bytes only) and refuses a file that fails any check.
 *
 * A checkpoint may come from another machine: reading one never trusts it.
 * Every metadata value is type- and range-checked (the limits below), every
 * float must be finite, a `latest` that is not a bare file name and a
 * non-regular file (a FIFO, a device) are refused without blocking, and
 * retention deletes only checkpoints that validate.
 *
 * A checkpoint directory holds
 *
 *     ckpt-<step, 12 digits>.safetensors   complete checkpoints; names sort by step
 *     latest                               symlink to the newest published one
 *     .ckpt-<step>.tmp-<pid>               being written (or left by a crash)
 *     .latest.tmp-<pid>                    the next `latest`, for a moment
 *
 * Publishing is atomic (common/fspub.h): a file appears under a final name
 * (rename, seen by inotify as IN_MOVED_TO) only once it is complete and
 * fsync()ed, so a reader or watcher never sees a partial checkpoint, and a
 * crash at any point leaves the previous checkpoints and `latest` intact.
 *
 * Fault points (common/faultpoint.h), in the order a save reaches them:
 * fspub's publish.begun, publish.synced and publish.renamed (the file; the
 * `latest` symlink hits none), then
 *     ckpt.published   the file is published, `latest` not yet re-pointed
 *     ckpt.retention   in ckpt_retain, before anything is deleted
 * (snapshot_save calls ckpt_retain after each save), so "NAME@N" pauses in
 * the N-th save of a process.  One process
 * writes a given directory at a time (temporary names carry only the pid);
 * any number may read and watch it.
 *
 * Errors: every function returns 0 or a negative HR_E* code and sets the
 * thread's message (common/err.h), naming the file and the problem.
 *
 * Threading: functions share no state except the fault-injection hook, so
 * different threads may save, open and watch concurrently (one writer per
 * directory).  A struct ckpt is immutable after ckpt_open and may be read
 * by many threads at once.
 */
#ifndef HR_CKPT_H
#define HR_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MODEL_MAX 64
#define CKPT_HASH_MAX 17
#define CKPT_FORMAT "hogrec-ckpt"
#define CKPT_VERSION "2"

/*
 * Bounds ckpt_open enforces on the metadata (and ckpt_save on what it is
 * given), so that a reader can add to them without wrapping: epoch, step,
 * samples and the hogrec "next_batch" stay below 2^53 (exact in every JSON
 * reader), created is at most 9999-12-31T23:59:59Z.
 */
#define CKPT_EPOCH_MAX 1000000
/* The "hogrec" key init_from (docs/FORMAT.md): at most this many
 * checkpoints, paths of at most CKPT_PATH_MAX bytes. */
#define CKPT_SOURCES_MAX 8
#define CKPT_PATH_MAX 4096
#define CKPT_COUNT_MAX ((UINT64_C(1) << 53) - 1)
#define CKPT_CREATED_MAX INT64_C(253402300799)

/* One tensor to save: rows * cols floats, row-major, at data. */
struct ckpt_tensor {
	const char *name;  /* UTF-8, non-empty, unique, not "__metadata__" */
	const float *data; /* may be NULL only when rows * cols == 0 */
	uint64_t rows, cols;
};

/*
 * What a checkpoint says about itself.  The caller of ckpt_save fills the
 * first group; ckpt_save ignores the second and ckpt_open fills both.
 */
struct ckpt_info {
	char model[CKPT_MODEL_MAX];      /* model name, non-empty */
	char schema_hash[CKPT_HASH_MAX]; /* the store's schema_hash (may be empty) */
	uint64_t epoch;                  /* <= CKPT_EPOCH_MAX */
	uint64_t step, samples;          /* <= CKPT_COUNT_MAX; step names the file */

	unsigned version;       /* format version: 1 or 2 */
	int64_t created;        /* unix seconds at save, 0 ... CKPT_CREATED_MAX */
	uint32_t crc32;         /* zlib crc32 (docs/FORMAT.md says of what) */
	uint64_t header_bytes;  /* JSON header length N (padding included) */
	uint64_t payload_bytes; /* tensor bytes after the header */
	uint64_t file_bytes;    /* 8 + N + payload_bytes */

	/*
	 * The resume position and seed of the "hogrec" document, when it has
	 * them (has_* 1; checked: strict decimal strings, next_batch <=
	 * CKPT_COUNT_MAX).  Whether next_batch fits the epoch is the caller's
	 * to check: only it knows the epoch's batch count.
	 */
	int has_next_batch, has_seed;
	uint64_t next_batch, seed;
};

/*
 * Writes a checkpoint of the n tensors t (in that order) into dir and
 * publishes it:
 *   1. dir/.ckpt-<step>.tmp-<pid> (mode 0644 before umask): tensor bytes,
 *      then the header, fsync
 *   2. rename to dir/ckpt-<step>.safetensors, fsync(dir)
 *   3. symlink dir/.latest.tmp-<pid> -> the file's name, rename over
 *      dir/latest, fsync(dir)
 * (steps 1-2 and 3 are each one fspub publish).
 * extra_json is a JSON object (text) kept verbatim as the "hogrec"
 * metadata string (hyper-parameters, rng state, metrics); NULL means "{}".
 * Integers above 2^53 lose precision in most JSON readers: write 64-bit
 * values such as rng state as strings.  The keys the trainer uses must
 * have the types and ranges ckpt_open checks (docs/FORMAT.md): a
 * checkpoint that would be refused on reading is not written.  If path_out is not NULL the final
 * path is written there (cap bytes).
 *
 * The tensor memory may be modified by other threads while it is saved
 * (Hogwild workers): each byte is read once, into a buffer that is both
 * checksummed and written, so the file is always self-consistent; the
 * values are then a fuzzy snapshot, as with any Hogwild checkpoint.
 *
 * A checkpoint of the same step replaces the existing file atomically.
 *
 * Every float is checked while it is copied: a NaN or an infinity fails the
 * save with HR_EFORMAT naming the tensor and the index.
 *
 * Errors: HR_EINVAL bad arguments, including metadata out of the ranges
 * above (message says which; nothing written); HR_EFORMAT a non-finite
 * float; HR_ENOMEM; HR_EIO naming the path and the system's reason (dir missing
 * or not a directory, not writable, disk full, fsync failure).  On any
 * failure the temporary file is removed, no new file is left under a final
 * name, and `latest` still names what it named before.
 */
int ckpt_save(const char *dir, const struct ckpt_info *info, const char *extra_json,
	      const struct ckpt_tensor *t, int n, char *path_out, size_t cap);

/* An open, fully validated checkpoint (a read-only memory map of the file). */
struct ckpt;

/*
 * Maps path and validates all of it: file length against the header
 * length, the header as JSON, every tensor entry (dtype F32, shape [rows,
 * cols], data_offsets in bounds, contiguous, non-overlapping, covering the
 * payload, size rows * cols * 4), the metadata (format, version, the type
 * and range of every value, and of the keys of the "hogrec" document the
 * trainer reads), the crc32, and that every float is finite.  A version 1
 * file is read, with a log_info that its metadata is not checksummed.
 * path is opened without blocking: a FIFO or device is refused, not read.
 *
 * Errors: HR_ENOENT (no such file), HR_EIO (cannot read, or not a regular
 * file), HR_EFORMAT (any check failed: the message names the file and the
 * problem, e.g. "'d/ckpt-000000000012.safetensors': checksum mismatch:
 * ...", "...: tensor 'w' holds a non-finite value (nan) at index 7 (row
 * 1, col 2)"), HR_EVERSION (a hogrec checkpoint of another version),
 * HR_ENOMEM.
 * Ownership: *out is the caller's; release with ckpt_close().
 */
int ckpt_open(struct ckpt **out, const char *path);
/* Unmaps and frees c (NULL is fine); every pointer obtained from c dies. */
void ckpt_close(struct ckpt *c);

/* The path c was opened with. */
const char *ckpt_path(const struct ckpt *c);
/* Number of tensors; they are numbered in file (offset) order. */
int ckpt_ntensors(const struct ckpt *c);
/* Name of tensor i (0 <= i < ckpt_ntensors); owned by c. */
const char *ckpt_tensor_name(const struct ckpt *c, int i);
/*
 * Tensor i's data (rows * cols floats, row-major, 4-byte aligned; owned by
 * c, read-only) and its shape.
 */
const float *ckpt_tensor_at(const struct ckpt *c, int i, uint64_t *rows, uint64_t *cols);
/* The tensor called name, or NULL (rows/cols untouched) if there is none. */
const float *ckpt_tensor(const struct ckpt *c, const char *name, uint64_t *rows, uint64_t *cols);
/* Metadata; owned by c. */
const struct ckpt_info *ckpt_get_info(const struct ckpt *c);
/* The caller's JSON object text given to ckpt_save; owned by c. */
const char *ckpt_extra_json(const struct ckpt *c);

/*
 * The file name dir/latest points to, into name (cap bytes), after checking
 * that it is a bare name in dir: not empty, no '/', not starting with '.'
 * (so neither "..", an absolute path nor a temporary file).  Does not open
 * the target.
 * Errors: HR_ENOENT (no latest), HR_EFORMAT (latest is not a symbolic
 * link, or its target is not a bare name or does not fit cap: the message
 * names the link and the target), HR_EIO.
 */
int ckpt_read_latest(const char *dir, char *name, size_t cap);

/*
 * The newest usable checkpoint of dir, written into path (cap bytes):
 * dir/latest's target if it validates; otherwise (latest missing, dangling,
 * not a bare name, or naming a bad file) the highest-step
 * ckpt-*.safetensors that validates, with a log_warn naming each bad file
 * skipped.
 * Errors: HR_ENOENT (dir missing, or it holds no checkpoint at all),
 * HR_EFORMAT (it holds some, none valid: "'DIR' holds no valid checkpoint:
 * " and the newest one's problem, e.g. "'DIR/ckpt-000000000012.safetensors':
 * checksum mismatch: ..."), HR_EIO, HR_ENOMEM, HR_EINVAL (path does not
 * fit cap).
 */
int ckpt_latest(const char *dir, char *path, size_t cap);

/*
 * Deletes old checkpoints of dir.  Only files it can verify count or go:
 * a ckpt-<12 digits>.safetensors that validates completely (ckpt_open),
 * whose metadata step is the one in its name and, when `latest` validates,
 * of the same model and schema hash as that one.  Any other ckpt-* file is
 * left alone with a log_warn naming it and why.  Of the ones that count, it
 * keeps the max(keep_last, 1) highest steps (so never the newest valid
 * one), the one of step best_step (0: none) and the one `latest` names,
 * and deletes the rest.  Also removes .ckpt-*.tmp-<pid> and
 * .latest.tmp-<pid> entries left by processes that no longer run.
 * Cost: every listed checkpoint is read once (crc and finiteness).
 * Errors: HR_EINVAL (keep_last < 0), HR_ENOENT (no dir), HR_ENOMEM,
 * HR_EIO (a file could not be removed: the others still are).
 */
int ckpt_retain(const char *dir, int keep_last, uint64_t best_step);

/* A checkpoint file name in a directory listing. */
struct ckpt_entry {
	uint64_t step;
	char name[48];
};

/*
 * The ckpt-<digits>.safetensors entries of dir, ascending by step (not
 * validated).  *out is malloc()ed (free() it; NULL when *n is 0).
 * Errors: HR_ENOENT (no dir), HR_EIO, HR_ENOMEM.
 */
int ckpt_list(const char *dir, struct ckpt_entry **out, size_t *n);

/*
 * Watching a directory for newly published checkpoints (inotify
 * IN_MOVED_TO of ckpt-*.safetensors).  Only files published after
 * ckpt_watch_open returns are reported.
 *
 * ckpt_watch_run waits for events and, for each checkpoint that appears,
 * opens and validates it and calls fn(path, c, ctx) with the open
 * checkpoint (valid only during the call).  A checkpoint that fails to open
 * (bad, or already deleted by retention) is logged with log_warn and
 * skipped.  If events were lost (inotify queue overflow) the directory is
 * rescanned and checkpoints with a higher step than any reported are
 * reported.  fn returns 0 to keep watching, > 0 to stop (run returns 0),
 * < 0 to stop with that code.  Run also returns 0 once stop_fd (-1: none)
 * becomes readable, e.g. a pipe a signal handler writes to.
 * Errors: HR_ENOENT (the directory is missing, removed or moved while
 * watched), HR_EIO (inotify failure), or fn's code.
 * Threading: one thread runs a given watch; the struct is the caller's
 * until ckpt_watch_close.
 */
struct ckpt_watch;
typedef int (*ckpt_watch_fn)(const char *path, const struct ckpt *c, void *ctx);

int ckpt_watch_open(struct ckpt_watch **out, const char *dir);
int ckpt_watch_run(struct ckpt_watch *w, int stop_fd, ckpt_watch_fn fn, void *ctx);
void ckpt_watch_close(struct ckpt_watch *w);

/*
 * Fault injection, for tests only: makes every later ckpt_save fail at the
 * given point with the given errno-like effect, until set to CKPT_FAULT_NONE.
 *   CKPT_FAULT_WRITE    after arg bytes of the file are written (ENOSPC)
 *   CKPT_FAULT_PUBLISH  the fsync of dir after the checkpoint's rename (EIO)
 *   CKPT_FAULT_LATEST   the rename of the new `latest` (EIO)
 *   CKPT_FAULT_FINAL    the last fsync of dir (EIO)
 * bin/ckpt sets CKPT_FAULT_WRITE from the environment (HOGREC_CKPT_FAULT).
 */
enum ckpt_fault {
	CKPT_FAULT_NONE,
	CKPT_FAULT_WRITE,
	CKPT_FAULT_PUBLISH,
	CKPT_FAULT_LATEST,
	CKPT_FAULT_FINAL,
};
void ckpt_fault_inject(enum ckpt_fault where, uint64_t arg);

#endif
