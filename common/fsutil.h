/*
 * fsutil.h - file helpers shared by ingest and the trainer.
 *
 * All functions return 0 or a negative HR_E* code with a message naming the
 * path (see err.h).
 */
#ifndef HR_FSUTIL_H
#define HR_FSUTIL_H

#include <stddef.h>

/*
 * A whole file mapped read-only.  data is NULL when the file is empty (then
 * len is 0).  Release with mapped_file_release().
 */
struct mapped_file {
	const char *data;
	size_t len;
};

/* Maps path.  HR_ENOENT if it does not exist, HR_EIO otherwise. */
int mapped_file_open(struct mapped_file *f, const char *path);
void mapped_file_release(struct mapped_file *f);

/* 1 if path exists (any type), 0 otherwise. */
int path_exists(const char *path);
/* 1 if path is a directory. */
int path_is_dir(const char *path);

/* Removes a directory tree (files and subdirectories); missing is not an error. */
int remove_tree(const char *path);

/* fsync()s a file or a directory by path. */
int fsync_path(const char *path);

/* Total size in bytes of the regular files directly inside dir. */
int dir_size(const char *dir, unsigned long long *bytes);

/* Writes "dir/name" into out (size n); HR_EINVAL if it does not fit. */
int path_join(char *out, size_t n, const char *dir, const char *name);

#endif
