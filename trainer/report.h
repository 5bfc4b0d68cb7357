/*
 * report.h - `bin/trainer report RUN_DIR`: a run's learning curves as one
 * SVG, drawn by gnuplot (Debian's gnuplot-nox; docs/ARCHITECTURE.md says
 * why a plotting program and not a library).
 *
 * Reads RUN_DIR/metrics.jsonl (the lines bin/trainer appends, a resumed
 * or --follow run's too: a later line for the same split and epoch
 * replaces an earlier one; the closing "final" lines repeat an epoch and
 * are left out) and draws four panels: the train loss per epoch; the
 * valid and test AUC (RMSE for rating models) with the popularity
 * baseline's; training samples/s; Recall@10/20/50/100 on valid with the
 * baselines' Recall@10 (runs with --rank-metrics yes; a note otherwise).
 * The data and the gnuplot script are written beside the output (OUT.dat,
 * OUT.gp: a user can restyle and rerun them) and the SVG is published by
 * rename, so a reader never sees half of it.
 *
 * Exit status: 0; 64 bad usage; 65 a malformed metrics line (named by its
 * number) or none with an epoch; 66 RUN_DIR or its metrics.jsonl missing;
 * 69 gnuplot not installed; 70 gnuplot failed (its message on stderr);
 * 74 the output could not be written.
 */
#ifndef HR_REPORT_H
#define HR_REPORT_H

/* The subcommand: argv[0] is "report".  Returns the exit status. */
int report_main(int argc, char **argv);

#endif
