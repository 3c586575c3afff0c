/* report.h: the rows of an evaluation and their outputs: aligned table,
 * CSV, gnuplot plot and a plain reading (doc/eval.md §5). */
#ifndef KVR_REPORT_H
#define KVR_REPORT_H

#include <stdio.h>
#include "eval.h"

/* One (workload, budget, method) cell, averaged over `seeds` runs. */
typedef struct {
    const char *workload;   /* as the user named it (trace:DIR included) */
    int context;
    double budget;          /* 1 for full */
    const char *method;
    int seeds;              /* runs averaged (seeds x trace layers) */
    int kv_heads, q_heads, head_dim, steps;
    kvr_elem elem;
    ev_result r;      /* means over the runs; needle_acc NAN when none */
} ev_row;

/* Widen the table's method column to the longest of the n names (at least
 * 18); call before the header.  A name wider than the column still keeps
 * the table aligned: it goes on a line of its own, its numbers below. */
void ev_report_method_width(const char *const *methods, int n);
/* The aligned table's header and one row (stdout). */
void ev_report_header(FILE *f);
void ev_report_row(FILE *f, const ev_row *row);
/* CSV: the header line and one row; fields with a comma or quote are quoted.
 * One header for every workload (doc/eval.md §5): a metric that does not
 * apply to a row is an empty cell. */
void ev_report_csv_header(FILE *f);
void ev_report_csv_row(FILE *f, const ev_row *row);

/* Every CSV column: the row of any workload.  NAN leaves a metric's cell
 * empty; trials 0 leaves the trials cell empty. */
typedef struct {
    const char *workload;
    int context;
    double budget;
    const char *method;
    int seeds;                       /* runs averaged */
    int kv_heads, q_heads, head_dim, steps;
    kvr_elem elem;
    double bytes_ratio, exact_ratio;
    double attn_rel_err, mass_exact;              /* synthetic, needle, trace */
    double needle_acc, needle_lo, needle_hi;      /* needle; Wilson 95% */
    double top1_agree, kl, ppl;                   /* model */
    double passkey_acc, passkey_lo, passkey_hi;   /* model --passkey; Wilson 95% */
    long trials;                     /* the interval's trials: needle queries or passkey trials */
    size_t bytes_held;
} ev_csv_row;
void ev_report_csv_fields(FILE *f, const ev_csv_row *r);
/* One CSV field (RFC 4180): as it is, or quoted, its quotes doubled, when it
 * holds a comma, a quote or a line break. */
void ev_report_csv_field(FILE *f, const char *s);
/* The CSV row of an ev_row (the needle's Wilson interval filled in when it
 * has needles). */
void ev_report_csv_of(const ev_row *row, ev_csv_row *out);
/* 1 when path ends in .svg or .png (case-insensitive), the terminals --plot
 * knows; *png says which. */
int ev_report_plot_kind(const char *path, int *png);
/* The quality a plot draws on its y axis (doc/eval.md §5): one CSV column
 * per workload. */
typedef enum {
    EV_PLOT_ATTN_REL_ERR,   /* synthetic, trace: log scale, lower is better */
    EV_PLOT_NEEDLE_ACC,     /* needle: with needle_lo..needle_hi as error bars */
    EV_PLOT_TOP1_AGREE,     /* model, teacher-forced: agreement with full */
    EV_PLOT_PASSKEY_ACC     /* model --passkey: with passkey_lo..passkey_hi */
} ev_plot_y;
/* Plot quantity y against the measured bytes_ratio, one line per method in
 * order of first appearance, with gnuplot into path; the default kvreviver
 * in black, boldest, drawn last.  A row whose y or bytes_ratio is NAN
 * (skipped, failed) is left out.  full is left out of the attn_rel_err
 * plot (its error is float rounding) and drawn on the others as a grey
 * dashed horizontal line at its value.  gnuplot writes a temporary file
 * beside path (out_temp_name), renamed over path once whole, so a failed
 * plot leaves no file.  0 on success; otherwise a message on stderr and 1. */
int ev_report_plot(const char *path, const ev_csv_row *rows, int n_rows, ev_plot_y y, const char *title);
/* A short plain reading of rows of one workload: per budget, the method with
 * the lowest error, the best eviction baseline against the paper-faithful
 * KVReviver and its best variant, and needle_acc where it applies. */
void ev_report_reading(FILE *f, const ev_row *rows, int n_rows);

#endif
