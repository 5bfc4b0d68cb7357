#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

int mapped_file_open(struct mapped_file *f, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	f->data = NULL;
	f->len = 0;
	if (fd < 0)
		return hr_error(errno == ENOENT ? HR_ENOENT : HR_EIO, "cannot open '%s': %s", path,
				strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return hr_error(HR_EIO, "cannot read '%s': %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hr_error(HR_EIO, "cannot read '%s': not a regular file", path);
	}
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			return hr_error(HR_EIO, "cannot map '%s': %s", path, strerror(e));
		}
		madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		f->data = p;
		f->len = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

void mapped_file_release(struct mapped_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->len);
	f->data = NULL;
	f->len = 0;
}

int path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int path_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int path_join(char *out, size_t n, const char *dir, const char *name)
{
	int k = snprintf(out, n, "%s/%s", dir, name);

	if (k < 0 || (size_t)k >= n)
		return hr_error(HR_EINVAL, "path too long: '%s/%s'", dir, name);
	return 0;
}

int remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ?
			       0 :
			       hr_error(HR_EIO, "cannot stat '%s': %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0)
			return hr_error(HR_EIO, "cannot remove '%s': %s", path, strerror(errno));
		return 0;
	}
	d = opendir(path);
	if (!d)
		return hr_error(HR_EIO, "cannot open directory '%s': %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char child[4096];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rc = path_join(child, sizeof(child), path, e->d_name);
		if (!rc)
			rc = remove_tree(child);
		if (rc)
			break;
	}
	closedir(d);
	if (!rc && rmdir(path) < 0)
		rc = hr_error(HR_EIO, "cannot remove directory '%s': %s", path, strerror(errno));
	return rc;
}

int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return hr_error(HR_EIO, "cannot open '%s' to sync: %s", path, strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = hr_error(HR_EIO, "cannot sync '%s': %s", path, strerror(errno));
	close(fd);
	return rc;
}

int dir_size(const char *dir, unsigned long long *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*bytes = 0;
	if (!d)
		return hr_error(HR_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char child[4096];
		struct stat st;
		if (path_join(child, sizeof(child), dir, e->d_name))
			continue;
		if (stat(child, &st) == 0 && S_ISREG(st.st_mode))
			*bytes += (unsigned long long)st.st_blocks * 512ULL;
	}
	closedir(d);
	return 0;
}
