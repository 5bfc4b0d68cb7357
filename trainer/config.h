/*
 * config.h - bin/trainer's options: one table, read from an INI file and
 * from command-line flags.
 *
 * Every option is one row of the table in config.c: its INI key, its
 * command-line flag (the key with '-' for '_'), its type, its range and
 * default, and the field of struct train_opts it sets.  The INI loader, the
 * command-line parser, config_check, config_print and --help all walk that
 * table, so adding an option is one row.  The fields that select an
 * action rather than configure training (loader_only, predict, predict_n:
 * --bench-loader, --predict, --limit) stay command-line only.
 *
 * The file (deploy/trainer.ini is a commented example):
 *
 *     ; comments start with ';' or '#'; " ;" after a value starts one too
 *     [trainer]
 *     data = /var/lib/hogrec/ml-1m.lmdb
 *     batch = 512
 *
 * - Every key lives in the one section [trainer]; a key before it, another
 *   section, an unknown key, a key given twice, a bad or out-of-range value
 *   are errors, as are indented lines (libinih would read them as the
 *   continuation of the previous value) and lines longer than libinih's
 *   buffer (198 characters, which bounds paths).
 * - Values are not quoted: `out = runs/a b` is "runs/a b".
 * - Integers are decimal digits only (no sign, fraction or exponent).
 *   Booleans: yes/no, true/false, on/off, 1/0.  Lists: `hidden = 256,64`.
 *
 * Precedence: defaults, then the file, then flags, whatever the order of
 * the flags on the command line.  Options never depend on the order they
 * were given in: `lr = 0` (the default) means "the optimizer's default" and
 * `lr_sparse = 0` means "same as lr"; config_finish() resolves both once
 * everything is read.
 *
 * Errors are HR_EINVAL with a message "WHERE: what is wrong (the text)",
 * WHERE being "FILE:LINE" or the flag ("--batch"; a WHERE starting with
 * '-' is taken for a flag, which names the option already), e.g.
 *
 *     trainer.ini:7: 'batch' must be an integer between 1 and 65536, not 'lots'
 *     trainer.ini:3: unknown key 'bach' in [trainer] (did you mean 'batch'?)
 *     trainer.ini:2: unknown model 'resnet' (trainer --help lists them)
 *     --batch: must be an integer between 1 and 65536, not 'lots'
 *
 * Ownership: the string options (data, out, model) of a struct train_opts
 * prepared with config_defaults() are owned by it: NULL or malloc()ed by
 * config_apply_option()/config_load(), replaced values freed, all freed by
 * config_release().  Never point them at other memory (argv, literals)
 * once config_defaults() ran: the next apply or the release would free it.
 *
 * log_level is not a field of struct train_opts: it sets the process-wide
 * level of common/log.h (log_set_level) when applied, and config_print
 * prints log_get_level().
 *
 * Threading: none of these functions may run concurrently with each other
 * or with logging set-up; they are meant for start-up, before threads.
 */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "trainer/train.h"

/* The one section of a trainer config file. */
#define CONFIG_SECTION "trainer"
/* The section of the model's own options (models/model.h, struct model_option). */
#define CONFIG_MODEL_SECTION "model"

/*
 * train_opts_defaults(), made printable and table-consistent: embedding
 * width 32 (the models' own default), lr and lr_sparse 0 (resolved by
 * config_finish), threads capped at the table's maximum.  The strings are
 * NULL and owned by o from now on; pair with config_release().
 */
void config_defaults(struct train_opts *o);

/* Frees the strings o owns (see Ownership) and sets them to NULL. */
void config_release(struct train_opts *o);

/*
 * Sets option `name` from text `value`, exactly as a file line or a flag
 * would.  name is an INI key ("lr_sparse") or a flag without its dashes
 * ("lr-sparse").  where ("FILE:LINE", "--lr-sparse") starts the message.
 * Returns 0; HR_EINVAL for an unknown name or a bad or out-of-range value
 * (o unchanged); HR_ENOMEM.
 */
int config_apply_option(struct train_opts *o, const char *name, const char *value,
			const char *where);

/*
 * Reads the INI file at path into o, on top of what o holds (call
 * config_defaults() first, and apply command-line flags after).  Parsing
 * stops at the first error.  Returns 0; HR_ENOENT (no such file) or HR_EIO
 * (cannot open or read it), the message naming path; HR_EINVAL with
 * "path:LINE: ..." (see above); HR_ENOMEM.  On failure o may hold the
 * values of the lines before the error (still owned, still released by
 * config_release).
 */
int config_load(struct train_opts *o, const char *path);

/*
 * Cross-field validation, for --check-config and before training: data,
 * model and out are set (model may be unset with predict: the checkpoint
 * names it), the model exists, data and out differ, every option is
 * within its table range (for opts built by hand), predict (when set) is
 * "train", "valid" or "test".  Returns 0 or HR_EINVAL naming the option.
 */
int config_check(const struct train_opts *o);

/*
 * Runs config_check(), then resolves what depends on other options: lr 0
 * becomes the optimizer's default, lr_sparse 0 becomes lr, an empty hidden
 * list the model's default widths (when a model is set).  Call once after
 * the file and the flags, before trainer_run.  Returns config_check's
 * status.
 */
int config_finish(struct train_opts *o);

/*
 * Writes o as an INI file that config_load reads back to the same options:
 * a comment per option with its meaning, range and default, then the key.
 * Unset strings are written commented out.  A string longer than the
 * loader's line limit (see above) would not read back.
 */
void config_print(FILE *out, const struct train_opts *o);

/* "  --flag ARG   help (range, default)" lines for every option, for --help. */
void config_usage(FILE *out);
/* The same for every model option (models/model.h), naming the models that
 * have it and their defaults; nothing when no model has options. */
void config_usage_models(FILE *out);

/* The table, for a getopt_long array: the number of options, and option
 * i's INI key ("lr_sparse") and flag ("lr-sparse"), both static strings. */
size_t config_option_count(void);
const char *config_option_key(size_t i);
const char *config_option_flag(size_t i);

#endif
