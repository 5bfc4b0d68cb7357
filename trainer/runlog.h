/*
 * runlog.h - OUT/metrics.jsonl, the run's metrics as JSON lines.
 *
 * The trainer appends one line per split and epoch after evaluating and
 * checkpoints right after.  A process killed between the two leaves lines
 * for an epoch that its checkpoint does not cover; the restart re-does that
 * epoch and would write them again.  So before it trains, a run drops
 * every line of the epochs it is about to (re-)do - and any torn line a
 * kill left - and a reader sees each (split, epoch) once: the lines of the
 * run whose checkpoints are in the directory.
 */
#ifndef HR_RUNLOG_H
#define HR_RUNLOG_H

#include <stddef.h>

/*
 * Rewrites path keeping only the lines that are JSON objects whose
 * "epoch" is below `epoch` (lines without an epoch are kept; lines that do
 * not parse are torn and dropped).  The file is replaced atomically
 * (common/fspub) and only when something is dropped; a missing file is
 * no error.  *dropped is the number of lines dropped.
 * Errors: HR_EIO (read, write or publish failed; the file is unchanged),
 * HR_ENOMEM.
 */
int runlog_keep_before(const char *path, int epoch, size_t *dropped);

#endif
