/* report.c: table, CSV, plot and plain reading of evaluation rows
 * (doc/eval.md §5). */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "common/message.h"
#include "interval.h"
#include "report.h"
#include "common/output.h"

/* The method column's width: the longest name ev_report_method_width was
 * given, at least 18. */
static int method_width = 18;

void ev_report_method_width(const char *const *methods, int n)
{
    method_width = 18;
    for (int i = 0; i < n; i++)
        if (methods[i] && (int)strlen(methods[i]) > method_width)
            method_width = (int)strlen(methods[i]);
}

void ev_report_header(FILE *f)
{
    fprintf(f, "%-10s %7s %6s %-*s %5s %11s %11s %12s %10s %22s\n", "workload", "context", "budget",
            method_width, "method", "runs", "bytes_ratio", "exact_ratio", "attn_rel_err", "mass_exact",
            "needle_acc");
}

void ev_report_row(FILE *f, const ev_row *row)
{
    char needle[40] = "-";
    if (!isnan(row->r.needle_acc)) {
        double lo, hi;   /* the Wilson 95% interval beside the rate */
        ev_wilson(row->r.found, row->r.needles, &lo, &hi);
        snprintf(needle, sizeof needle, "%.3f [%.2f,%.2f]", row->r.needle_acc, lo, hi);
    }
    const char *method = row->method;
    if ((int)strlen(method) > method_width) {
        /* a name wider than its column: on a line of its own, the numbers
         * below it in their columns */
        fprintf(f, "%-10s %7d %6.2f %s\n", row->workload, row->context, row->budget, method);
        fprintf(f, "%-10s %7s %6s ", "", "", "");
        method = "";
    } else {
        fprintf(f, "%-10s %7d %6.2f ", row->workload, row->context, row->budget);
    }
    fprintf(f, "%-*s %5d %11.4f %11.4f %#12.4g %10.4f %22s\n", method_width, method, row->seeds,
            row->r.bytes_ratio, row->r.exact_ratio, row->r.attn_rel_err, row->r.mass_exact, needle);
}

void ev_report_csv_header(FILE *f)
{
    fputs("workload,context,budget,method,seeds,kv_heads,q_heads,head_dim,steps,elem,"
          "bytes_ratio,exact_ratio,attn_rel_err,mass_exact,needle_acc,needle_lo,needle_hi,"
          "top1_agree,kl,ppl,passkey_acc,passkey_lo,passkey_hi,trials,bytes_held\n", f);
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
void ev_report_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* A metric's cell: empty for NAN. */
static void csv_metric(FILE *f, double x)
{
    fputc(',', f);
    if (!isnan(x))
        fprintf(f, "%.9g", x);
}

void ev_report_csv_fields(FILE *f, const ev_csv_row *r)
{
    ev_report_csv_field(f, r->workload);
    fprintf(f, ",%d,%.6g,", r->context, r->budget);
    ev_report_csv_field(f, r->method);
    fprintf(f, ",%d,%d,%d,%d,%d,%s", r->seeds, r->kv_heads, r->q_heads, r->head_dim, r->steps,
            kvr_elem_name(r->elem));
    const double m[] = {r->bytes_ratio, r->exact_ratio, r->attn_rel_err, r->mass_exact, r->needle_acc,
                        r->needle_lo, r->needle_hi, r->top1_agree, r->kl, r->ppl, r->passkey_acc,
                        r->passkey_lo, r->passkey_hi};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        csv_metric(f, m[i]);
    fputc(',', f);
    if (r->trials > 0)
        fprintf(f, "%ld", r->trials);
    fprintf(f, ",%zu\n", r->bytes_held);
}

void ev_report_csv_of(const ev_row *row, ev_csv_row *out)
{
    ev_csv_row r = {row->workload, row->context, row->budget, row->method, row->seeds, row->kv_heads,
                    row->q_heads, row->head_dim, row->steps, row->elem, row->r.bytes_ratio,
                    row->r.exact_ratio, row->r.attn_rel_err, row->r.mass_exact, row->r.needle_acc,
                    NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, row->r.bytes_held};
    if (!isnan(row->r.needle_acc)) {
        ev_wilson(row->r.found, row->r.needles, &r.needle_lo, &r.needle_hi);
        r.trials = row->r.needles;
    }
    *out = r;
}

void ev_report_csv_row(FILE *f, const ev_row *row)
{
    ev_csv_row r;
    ev_report_csv_of(row, &r);
    ev_report_csv_fields(f, &r);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suffix[i]) return 0;
    return 1;
}

int ev_report_plot_kind(const char *path, int *png)
{
    *png = ends_with(path, ".png");
    return *png || ends_with(path, ".svg");
}

#ifdef KVR_GNUPLOT
/* A gnuplot single-quoted string: '' stands for one quote. */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* Row r's y value and its interval (lo, hi: NAN when y has none). */
static double plot_value(const ev_csv_row *r, ev_plot_y y, double *lo, double *hi)
{
    *lo = *hi = NAN;
    switch (y) {
    case EV_PLOT_NEEDLE_ACC:  *lo = r->needle_lo; *hi = r->needle_hi; return r->needle_acc;
    case EV_PLOT_TOP1_AGREE:  return r->top1_agree;
    case EV_PLOT_PASSKEY_ACC: *lo = r->passkey_lo; *hi = r->passkey_hi; return r->passkey_acc;
    case EV_PLOT_ATTN_REL_ERR:
    default:                  return r->attn_rel_err;
    }
}
#endif

int ev_report_plot(const char *path, const ev_csv_row *rows, int n_rows, ev_plot_y y, const char *title)
{
#ifndef KVR_GNUPLOT
    (void)rows; (void)n_rows; (void)y; (void)title;
    msg_error("--plot %s: this kvreviver was built without gnuplot (configure did not find it); "
              "install gnuplot and rebuild, or use --csv", path);
    return 1;
#else
    int png;
    ev_report_plot_kind(path, &png);
    int bars = y == EV_PLOT_NEEDLE_ACC || y == EV_PLOT_PASSKEY_ACC;
    /* the methods in order of first appearance among all rows (so that a
     * method skipped at the small budgets keeps its place, and its style),
     * then only those with a value; full apart: a reference line where y
     * is a quality full has, left out of the error plot (its error is float
     * rounding) */
    const char *methods[64];
    int n_methods = 0, valued[64] = {0};
    double full = NAN, lo, hi;
    for (int i = 0; i < n_rows; i++) {
        double v = plot_value(&rows[i], y, &lo, &hi);
        int has = !isnan(v) && !isnan(rows[i].bytes_ratio);   /* not skipped or failed */
        if (!strcmp(rows[i].method, "full")) {
            if (has && y != EV_PLOT_ATTN_REL_ERR) full = v;
            continue;
        }
        int m = 0;
        while (m < n_methods && strcmp(methods[m], rows[i].method)) m++;
        if (m == n_methods && n_methods < 64) methods[n_methods++] = rows[i].method;
        if (m < n_methods) valued[m] |= has;
    }
    int kept = 0;
    for (int m = 0; m < n_methods; m++)
        if (valued[m]) methods[kept++] = methods[m];
    n_methods = kept;
    if (n_methods == 0) {
        msg_error("--plot %s: nothing to plot: no compressed method has a value%s", path,
                  y == EV_PLOT_ATTN_REL_ERR ? " (full attention is not plotted: its error is float rounding)" : "");
        return 1;
    }
    /* gnuplot writes a temporary file beside path, renamed over it only
     * when whole: a failed plot leaves no file */
    char tmp[OUT_PATH_MAX];
    if (out_temp_name(tmp, sizeof tmp, path) != 0) {
        msg_error("--plot %s: the name is too long", path);
        return 1;
    }
    fflush(stdout);
    FILE *gp = popen(KVR_GNUPLOT, "w");
    if (!gp) {
        msg_error("--plot %s: cannot run %s: %s", path, KVR_GNUPLOT, strerror(errno));
        return 1;
    }
    fprintf(gp, "set terminal %s size 900,540 font 'sans,11'\nset output ", png ? "pngcairo" : "svg");
    gp_string(gp, tmp);
    /* a little room at the sides: a point at a budget's edge stays whole */
    fputs("\nset grid\nset key outside right\nset bars small\nset offsets graph 0.03, graph 0.03, 0, 0\n"
          "set xlabel 'bytes\\_ratio: bytes held / bytes of the full cache (measured)'\n", gp);
    static const char *const ylabels[] = {
        [EV_PLOT_ATTN_REL_ERR] = "attn\\_rel\\_err  ||o - o_{full}|| / ||o_{full}||  (lower is better)",
        [EV_PLOT_NEEDLE_ACC] = "needle\\_acc, Wilson 95%  (higher is better)",
        [EV_PLOT_TOP1_AGREE] = "top1\\_agree with full  (higher is better)",
        [EV_PLOT_PASSKEY_ACC] = "passkey\\_acc, Wilson 95%  (higher is better)",
    };
    if (y == EV_PLOT_ATTN_REL_ERR)
        fputs("set logscale y\n", gp);
    else
        fputs("set yrange [0:1.05]\n", gp);     /* shares: 0 to 1, room for the top points */
    fputs("set ylabel ", gp);
    gp_string(gp, ylabels[y]);
    fputs("\nset title ", gp);
    gp_string(gp, title);
    fputs(" noenhanced\n", gp);                     /* head_dim as written, not a subscript */
    /* $m<i>: x y [lo hi] per row of method i, by x */
    for (int m = 0; m < n_methods; m++) {
        fprintf(gp, "$m%d << EOD\n", m);
        for (int i = 0; i < n_rows; i++) {
            if (strcmp(rows[i].method, methods[m])) continue;
            double v = plot_value(&rows[i], y, &lo, &hi);
            if (isnan(v) || isnan(rows[i].bytes_ratio)) continue;
            if (bars)
                fprintf(gp, "%.9g %.9g %.9g %.9g\n", rows[i].bytes_ratio, v, isnan(lo) ? v : lo, isnan(hi) ? v : hi);
            else
                fprintf(gp, "%.9g %.9g\n", rows[i].bytes_ratio, v);
        }
        fputs("EOD\n", gp);
    }
    /* every method its own colour, dash and point type; the default,
     * kvreviver, in black, boldest and drawn last, on top, so that flat
     * lines that overlap still show each other; an interval as thin bars in
     * the method's colour under its line */
    static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
    static const int points[] = {4, 6, 8, 10, 12, 14, 1, 2, 3, 5};
    enum { N_STYLES = sizeof colours / sizeof colours[0] };
    fputs("plot ", gp);
    int drawn = 0, k = 0, def = -1;
    for (int m = 0; m < n_methods; m++) {
        if (!strcmp(methods[m], "kvreviver")) { def = m; continue; }
        const char *colour = colours[k % N_STYLES];
        if (bars)
            fprintf(gp, "%s$m%d using 1:2:3:4 with yerrorbars lw 1 lc rgb '%s' pt 7 ps 0 notitle", drawn++ ? ", " : "",
                    m, colour);
        fprintf(gp, "%s$m%d using 1:2 with linespoints lw 2 dt %d lc rgb '%s' pt %d ps 1.3 title ",
                drawn++ ? ", " : "", m, 1 + k % 5, colour, points[(k + k / N_STYLES) % N_STYLES]);
        gp_string(gp, methods[m]);
        k++;
    }
    if (!isnan(full)) {
        fprintf(gp, "%s%.9g with lines lw 2 dt 2 lc rgb '#808080' title ", drawn++ ? ", " : "", full);
        gp_string(gp, y == EV_PLOT_TOP1_AGREE ? "full (the reference)" : "full (budget 1)");
    }
    if (def >= 0) {
        if (bars)
            fprintf(gp, "%s$m%d using 1:2:3:4 with yerrorbars lw 2 lc rgb '#000000' pt 7 ps 0 notitle",
                    drawn++ ? ", " : "", def);
        fprintf(gp, "%s$m%d using 1:2 with linespoints lw 4 lc rgb '#000000' pt 7 ps 1.6 title ",
                drawn ? ", " : "", def);
        gp_string(gp, "kvreviver (default)");
    }
    fputs("\nset output\n", gp);
    int st = pclose(gp);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        msg_error("--plot %s: gnuplot (%s) failed (status %d)", path, KVR_GNUPLOT,
                  st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        remove(tmp);
        return 1;
    }
    FILE *check = fopen(tmp, "rb");
    long size = 0;
    if (check) { fseek(check, 0, SEEK_END); size = ftell(check); fclose(check); }
    if (size <= 0) {
        msg_error("--plot %s: gnuplot wrote nothing there", path);
        remove(tmp);
        return 1;
    }
    if (rename(tmp, path) != 0) {
        msg_error("--plot %s: cannot rename %s to it: %s", path, tmp, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
#endif
}

static int is_eviction(const char *m)
{
    return !strcmp(m, "streaming") || !strcmp(m, "h2o") || !strcmp(m, "snapkv") || !strcmp(m, "tova");
}

static int is_reviver(const char *m)
{
    return !strncmp(m, "kvreviver", 9);
}

/* an eviction method keeping its tokens quantized (store=q8 or q4) */
static int is_eviction_quant(const char *m)
{
    size_t n = strcspn(m, "/");
    char base[16];
    if (n >= sizeof base || (strcmp(m + n, "/store=q4") && strcmp(m + n, "/store=q8"))) return 0;
    memcpy(base, m, n);
    base[n] = '\0';
    return is_eviction(base);
}

static int is_kivi(const char *m)
{
    return !strcmp(m, "kivi") || !strncmp(m, "kivi/", 5);
}

static int is_mikv(const char *m)
{
    return !strcmp(m, "mikv") || !strncmp(m, "mikv/", 5);
}

/* Best (lowest error, or highest needle_acc when needle is set) among rows
 * at budget b for which pick() holds; NULL when none. */
static const ev_row *best(const ev_row *rows, int n, const char *workload, double b,
                           int (*pick)(const char *), int needle)
{
    const ev_row *r = NULL;
    for (int i = 0; i < n; i++) {
        const ev_row *x = &rows[i];
        if (x->budget != b || strcmp(x->workload, workload) || !pick(x->method)) continue;
        if (!r || (needle ? x->r.needle_acc > r->r.needle_acc : x->r.attn_rel_err < r->r.attn_rel_err))
            r = x;
    }
    return r;
}

static int any_compressed(const char *m)
{
    return strcmp(m, "full") != 0;
}

static int default_reviver(const char *m)
{
    return !strcmp(m, "kvreviver");
}

static int paper_faithful(const char *m)
{
    return !strcmp(m, "kvreviver-paper");
}

static int other_variant(const char *m)
{
    return is_reviver(m) && !default_reviver(m) && !paper_faithful(m);
}

/* "W wins: 26% lower error than L" (or "W wins: L's error is 2.4 times
 * as high"), or about a tie: the verdict of two errors, lower wins, said
 * plainly. */
static void say_errors(FILE *f, const ev_row *a, const ev_row *b)
{
    const ev_row *win = a->r.attn_rel_err <= b->r.attn_rel_err ? a : b, *lose = win == a ? b : a;
    double ratio = lose->r.attn_rel_err / win->r.attn_rel_err;
    if (!(ratio < 1.005) && isfinite(ratio)) {
        if (ratio < 2.0)
            fprintf(f, "%s wins: %.2g%% lower error than %s", win->method, 100.0 * (1.0 - 1.0 / ratio),
                    lose->method);
        else
            fprintf(f, "%s wins: %s's error is %.2g times as high", win->method, lose->method, ratio);
    } else if (ratio < 1.005) {
        fprintf(f, "about a tie (within 0.5%%)");
    } else {
        fprintf(f, "%s wins", win->method);
    }
}

/* Needles found by a against b: who found more, in percentage points. */
static void say_needles(FILE *f, const ev_row *a, const ev_row *b)
{
    double x = 100.0 * a->r.needle_acc, y = 100.0 * b->r.needle_acc;
    if (fabs(x - y) < 0.5)
        fprintf(f, "a tie");
    else
        fprintf(f, "%s wins by %.0f percentage points", x > y ? a->method : b->method, fabs(x - y));
}

void ev_report_reading(FILE *f, const ev_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        double b = rows[i].budget;
        const char *wl = rows[i].workload;
        int first = 1;
        for (int j = 0; j < i; j++) first &= rows[j].budget != b || strcmp(rows[j].workload, wl);
        if (!first || !strcmp(rows[i].method, "full")) continue;
        const ev_row *all = best(rows, n, wl, b, any_compressed, 0);
        const ev_row *ev = best(rows, n, wl, b, is_eviction, 0);
        const ev_row *kv = best(rows, n, wl, b, default_reviver, 0);
        const ev_row *kp = best(rows, n, wl, b, paper_faithful, 0);
        const ev_row *var = best(rows, n, wl, b, other_variant, 0);
        fprintf(f, "- %s, budget %.2f: lowest attn_rel_err %s %.3g.\n", wl, b, all->method, all->r.attn_rel_err);
        if (ev && kv) {
            fprintf(f, "  The default kvreviver %.3g against the best eviction baseline %s %.3g: ",
                    kv->r.attn_rel_err, ev->method, ev->r.attn_rel_err);
            say_errors(f, kv, ev);
            fputs(".\n", f);
        }
        /* the other families a practitioner would pick (issue 23) */
        const ev_row *evq = best(rows, n, wl, b, is_eviction_quant, 0);
        const ev_row *ki = best(rows, n, wl, b, is_kivi, 0);
        const ev_row *mi = best(rows, n, wl, b, is_mikv, 0);
        const ev_row *fam[3] = {evq, ki, mi};
        const char *fam_name[3] = {"eviction with quantized storage", "KIVI", "MiKV"};
        for (int k = 0; k < 3 && kv; k++) {
            if (!fam[k]) {
                if (k > 0) fprintf(f, "  %s: does not fit this budget.\n", fam_name[k]);
                continue;
            }
            fprintf(f, "  Against the best %s, %s %.3g: ", fam_name[k], fam[k]->method, fam[k]->r.attn_rel_err);
            say_errors(f, kv, fam[k]);
            fputs(".\n", f);
        }
        if (ev && kp) {
            fprintf(f, "  Paper-faithful kvreviver-paper %.3g: ", kp->r.attn_rel_err);
            say_errors(f, kp, ev);
            fputs(".\n", f);
        }
        if (ev && var && (!kv || var->r.attn_rel_err < kv->r.attn_rel_err)) {
            fprintf(f, "  Best other variant %s %.3g (a variant, not the default): ", var->method,
                    var->r.attn_rel_err);
            say_errors(f, var, ev);
            fputs(".\n", f);
        }
        if (!isnan(rows[i].r.needle_acc)) {
            const ev_row *evn = best(rows, n, wl, b, is_eviction, 1);
            const ev_row *kvn = best(rows, n, wl, b, default_reviver, 1);
            const ev_row *varn = best(rows, n, wl, b, is_reviver, 1);
            if (evn && kvn) {
                fprintf(f, "  Needles found: the default kvreviver %.0f%%, the best eviction baseline %s %.0f%%: ",
                        100.0 * kvn->r.needle_acc, evn->method, 100.0 * evn->r.needle_acc);
                say_needles(f, kvn, evn);
                fputs(".\n", f);
            }
            const ev_row *famn[3] = {best(rows, n, wl, b, is_eviction_quant, 1), best(rows, n, wl, b, is_kivi, 1),
                                     best(rows, n, wl, b, is_mikv, 1)};
            for (int k = 0; k < 3 && kvn; k++) {
                if (!famn[k]) continue;
                fprintf(f, "  Needles found by the best %s, %s: %.0f%%: ",
                        fam_name[k], famn[k]->method, 100.0 * famn[k]->r.needle_acc);
                say_needles(f, kvn, famn[k]);
                fputs(".\n", f);
            }
            if (evn && varn && kvn && varn != kvn && varn->r.needle_acc > kvn->r.needle_acc) {
                fprintf(f, "  Of the variants, %s found %.0f%% (not the default): ", varn->method,
                        100.0 * varn->r.needle_acc);
                say_needles(f, varn, evn);
                fputs(".\n", f);
            }
        }
    }
}
