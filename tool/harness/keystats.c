/* keystats.c: channel statistics of a real model's keys and values and
 * their quantization error (`kvreviver keys`, doc/model.md §7).
 *
 * The keys and values are those a cache receives: the prompt pass of the
 * runtime (lm_model_prompt, the one eval runs and kvr_prefill is fed from)
 * keeps every layer's post-RoPE keys and values, [n][kv_heads][head_dim].
 * For each KV head this file measures how unevenly the channels spread
 * (the range of each channel over the positions; the share of each key's
 * squared norm in its largest channels) and what b-bit codes lose, coded
 * two ways with the reference's own quantizer (ref/quant.c, spec §18.2 and
 * §18.3, float16 zero point and scale):
 *   per token   one code per position over its head_dim channels: what
 *               store=q4 / store=q8 keep (spec §18, first use);
 *   per channel one code per channel over a group of EV_KEYS_GROUP
 *               consecutive positions: how KIVI codes keys (spec §18.6).
 * A channel far wider than the others stretches a per-token code over its
 * range and leaves few levels for the rest; a per-channel code gives each
 * channel its own range.  The comparison says which the model's keys
 * favour. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/message.h"
#include "keystats.h"
#include "model_eval.h"
#include "report.h"
#include "ref.h"

const int ev_keys_bits[EV_KEYS_BITS] = {4, 2};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Squared error of coding x[0], x[stride], ... x[(n-1)*stride] as one
 * vector at `bits` (spec §18.2), dequantized (§18.3), into *err2.
 * KVR_ERANGE when the zero point or scale does not fit float16. */
static int code_error(const float *x, int n, int stride, int bits, double *err2)
{
    uint16_t z, s;
    int status = ref_quant_params(x, (size_t)n, (size_t)stride, bits, &z, &s);
    if (status != KVR_OK)
        return status;
    double e = 0.0;
    for (int i = 0; i < n; i++) {
        float xi = x[(size_t)i * stride];
        double d = (double)xi - (double)ref_dequant(ref_quant_code(xi, z, s, bits), z, s);
        e += d * d;
    }
    *err2 += e;
    return KVR_OK;
}

int ev_keys_head(ev_keys_acc *a, int which, const float *x, int n, int stride, int D, int group)
{
    if (!a || !x || (which != 0 && which != 1) || n < 1 || D < 1 || stride < D || group < 1)
        return KVR_EINVAL;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < D; i++) {
            float v = x[(size_t)t * stride + i];
            if (!isfinite(v))
                return KVR_ENONFINITE;
            if (fabsf(v) > 65504.0f)      /* float16's largest: what quantized storage accepts (spec §18.1) */
                return KVR_ERANGE;
        }
    float *range = malloc(sizeof(float) * (size_t)D);   /* [D] */
    if (!range)
        return KVR_ENOMEM;
    ev_keys_acc h = {0};   /* this head's sums, added to a only when all is well */
    int status = KVR_OK;

    /* 1. channel ranges: max over median */
    for (int i = 0; i < D; i++) {
        float lo = x[i], hi = x[i];
        for (int t = 1; t < n; t++) {
            float v = x[(size_t)t * stride + i];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        range[i] = hi - lo;
    }
    qsort(range, (size_t)D, sizeof *range, cmp_float);
    double med = D % 2 ? range[D / 2] : 0.5 * ((double)range[D / 2 - 1] + range[D / 2]);
    double mx = range[D - 1];
    h.ratio_sum[which] = med > 0.0 ? mx / med : mx > 0.0 ? INFINITY : 1.0;
    h.heads[which] = 1;

    /* 2. share of each vector's squared norm in its EV_KEYS_TOP largest channels */
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * stride;
        double top[EV_KEYS_TOP] = {0}, all = 0.0;   /* top: descending */
        for (int i = 0; i < D; i++) {
            double q = (double)xt[i] * xt[i];
            all += q;
            for (int j = 0; j < EV_KEYS_TOP; j++)
                if (q > top[j]) {
                    for (int k = EV_KEYS_TOP - 1; k > j; k--) top[k] = top[k - 1];
                    top[j] = q;
                    break;
                }
        }
        h.norm2[which] += all;
        if (all > 0.0) {
            double s = 0.0;
            for (int j = 0; j < EV_KEYS_TOP; j++) s += top[j];
            h.top_sum[which] += s / all;
            h.positions[which]++;
        }
    }

    /* 3. quantization error per token and per channel over groups */
    for (int b = 0; b < EV_KEYS_BITS && status == KVR_OK; b++) {
        int bits = ev_keys_bits[b];
        for (int t = 0; t < n && status == KVR_OK; t++)
            status = code_error(x + (size_t)t * stride, D, 1, bits, &h.err2_token[which][b]);
        for (int g0 = 0; g0 < n && status == KVR_OK; g0 += group) {
            int len = n - g0 < group ? n - g0 : group;
            for (int i = 0; i < D && status == KVR_OK; i++)
                status = code_error(x + (size_t)g0 * stride + i, len, stride, bits, &h.err2_channel[which][b]);
        }
    }
    free(range);
    if (status == KVR_OK)
        ev_keys_merge(a, &h);
    return status;
}

void ev_keys_merge(ev_keys_acc *a, const ev_keys_acc *b)
{
    for (int w = 0; w < 2; w++) {
        a->heads[w] += b->heads[w];
        a->ratio_sum[w] += b->ratio_sum[w];
        a->positions[w] += b->positions[w];
        a->top_sum[w] += b->top_sum[w];
        a->norm2[w] += b->norm2[w];
        for (int k = 0; k < EV_KEYS_BITS; k++) {
            a->err2_token[w][k] += b->err2_token[w][k];
            a->err2_channel[w][k] += b->err2_channel[w][k];
        }
    }
}

void ev_keys_result(const ev_keys_acc *a, ev_keys_stats *out)
{
    for (int w = 0; w < 2; w++) {
        out->range_ratio[w] = a->heads[w] ? a->ratio_sum[w] / (double)a->heads[w] : NAN;
        out->top_share[w] = a->positions[w] ? a->top_sum[w] / (double)a->positions[w] : NAN;
        for (int k = 0; k < EV_KEYS_BITS; k++) {
            int ok = a->heads[w] && a->norm2[w] > 0.0;
            out->err_token[w][k] = ok ? sqrt(a->err2_token[w][k] / a->norm2[w]) : NAN;
            out->err_channel[w][k] = ok ? sqrt(a->err2_channel[w][k] / a->norm2[w]) : NAN;
        }
    }
}

/* ---- the run ----------------------------------------------------------------- */

static void sample_progress(const char *what, int done, int total)
{
    (void)what;
    if (done % 16 == 0 || done == total)
        msg_progress_count(done, total, "keys: sampling the text");
}

/* One line of the table: the label, then the statistics. */
static void table_row(const char *label, const ev_keys_stats *s)
{
    printf("%-5s %7.2f %7.2f %6.3f %6.3f", label, s->range_ratio[0], s->range_ratio[1], s->top_share[0],
           s->top_share[1]);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < EV_KEYS_BITS; k++)
            printf(" %9.4f %9.4f", s->err_token[w][k], s->err_channel[w][k]);
    printf("\n");
}

static void csv_row(FILE *f, const char *model, int context, const char *text, const lm_model *m, const char *layer,
                    const ev_keys_stats *s)
{
    ev_report_csv_field(f, model);
    fprintf(f, ",%d,", context);
    ev_report_csv_field(f, text);
    fprintf(f, ",%s,%d,%d,%d,%.6g,%.6g,%.6g,%.6g", layer, m->n_kv_heads, m->head_dim,
            EV_KEYS_GROUP, s->range_ratio[0], s->range_ratio[1], s->top_share[0], s->top_share[1]);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < EV_KEYS_BITS; k++)
            fprintf(f, ",%.6g,%.6g", s->err_token[w][k], s->err_channel[w][k]);
    fprintf(f, "\n");
}

int ev_keys_run(const lm_model *m, const ev_keys_opts *o)
{
    const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
    if (m->seq_len > 0 && o->context > m->seq_len) {
        msg_error("keys: --context %d is above the model's trained context of %d positions (%s)", o->context,
                  m->seq_len, base);
        return 2;
    }
    int *doc = NULL, n_doc = 0;
    ev_model_task task = {0};
    const int *tokens;
    lm_blas_threads(1);                  /* as eval: the numbers must not depend on the threads */
    msg_progress_clock();
    if (o->text) {
        int s = ev_model_text_tokens(m, o->text, &doc, &n_doc);
        if (s != KVR_OK) {
            msg_error("keys: %s: %s", base, lm_model_error());
            return s == KVR_EINVAL ? 2 : 1;
        }
        if (n_doc < o->context) {
            msg_error("keys: --text %s has %d tokens (%s's tokenizer), fewer than --context %d; "
                      "give a shorter --context or a longer text", o->text, n_doc, base, o->context);
            free(doc);
            return 2;
        }
        tokens = doc;
    } else {
        /* eval's sampled text: the same stream from BOS; decode context-1
         * leaves the task's own prompt one token, the run below takes all */
        int s = ev_model_task_init(&task, m, o->context, o->context - 1, o->seed, KVR_F32, sample_progress);
        msg_progress_done();
        if (s != KVR_OK) {
            msg_error("keys: sampling the text: %s", lm_model_error());
            return 1;
        }
        tokens = task.tokens;
    }
    msg_progress("keys: the prompt pass over %d positions", o->context);
    lm_prompt pr;
    int status = lm_model_prompt(m, o->context, tokens, 0, &pr);
    msg_progress_done();
    if (status != KVR_OK) {
        msg_error("keys: the prompt pass: %s", lm_model_error());
        free(doc);
        ev_model_task_free(&task);
        return 1;
    }

    int L = m->n_layers, H = m->n_kv_heads, D = m->head_dim, n = o->context, kd = H * D, failed = 0;
    ev_keys_acc all = {0};
    ev_keys_stats *per = malloc(sizeof *per * (size_t)L);   /* [L] */
    if (!per) {
        msg_error("keys: out of memory");
        failed = 1;
    }
    for (int l = 0; l < L && !failed; l++) {
        msg_progress_count(l, L, "keys: layer %d/%d", l + 1, L);
        ev_keys_acc acc = {0};
        for (int h = 0; h < H && !failed; h++)
            for (int w = 0; w < 2 && !failed; w++) {
                const float *x = (w ? pr.v : pr.k) + (size_t)l * n * kd + (size_t)h * D;
                int s = ev_keys_head(&acc, w, x, n, kd, D, EV_KEYS_GROUP);
                if (s != KVR_OK) {
                    msg_progress_done();
                    msg_error("keys: layer %d, KV head %d, %s: %s%s", l, h, w ? "values" : "keys", kvr_strerror(s),
                              s == KVR_ERANGE ? " (outside float16's range, which quantized storage refuses, spec §18.1)"
                                              : "");
                    failed = 1;
                }
            }
        if (!failed) {
            ev_keys_result(&acc, &per[l]);
            ev_keys_merge(&all, &acc);
        }
    }
    msg_progress_done();
    if (!failed) {
        ev_keys_stats pooled;
        ev_keys_result(&all, &pooled);
        const char *text = o->text ? o->text : "sampled";
        if (o->csv != stdout) {
            printf("model %s: %d layers, %d KV heads, head_dim %d, trained context %d\n", base, L, H, D, m->seq_len);
            if (o->text)
                printf("text %s: the first %d of its %d tokens\n", o->text, n, n_doc);
            else
                printf("sampled text: %d positions from BOS, seed %llu (as eval samples it)\n", n,
                       (unsigned long long)o->seed);
            printf("keys (post-RoPE) and values as the cache receives them, each KV head over every position:\n"
                   "  k_range, v_range: max / median over channels of the channel's range (max - min\n"
                   "        over positions), mean over heads\n"
                   "  top%d: share of a vector's squared norm in its %d largest channels, mean over\n"
                   "        positions and heads (%.3f if every channel held the same)\n"
                   "  tok_qB / chan_qB: relative RMS error ||x - deq(x)|| / ||x|| over the layer of\n"
                   "        B-bit codes per token over head_dim (spec 18.2, store=q4) and per\n"
                   "        channel over groups of %d positions (KIVI keys, spec 18.6)\n\n",
                   EV_KEYS_TOP, EV_KEYS_TOP, D < EV_KEYS_TOP ? 1.0 : (double)EV_KEYS_TOP / D, EV_KEYS_GROUP);
            printf("%-5s %7s %7s %6s %6s", "layer", "k_range", "v_range", "k_top4", "v_top4");
            const char *kv[2] = {"k", "v"};
            for (int w = 0; w < 2; w++)
                for (int k = 0; k < EV_KEYS_BITS; k++) {
                    char a[32], b[32];
                    snprintf(a, sizeof a, "%s_tok_q%d", kv[w], ev_keys_bits[k]);
                    snprintf(b, sizeof b, "%s_chan_q%d", kv[w], ev_keys_bits[k]);
                    printf(" %9s %9s", a, b);
                }
            printf("\n");
            for (int l = 0; l < L; l++) {
                char label[16];
                snprintf(label, sizeof label, "%d", l);
                table_row(label, &per[l]);
            }
            table_row("all", &pooled);
            fflush(stdout);
        }
        if (o->csv) {
            fprintf(o->csv, "model,context,text,layer,kv_heads,head_dim,group,k_range,v_range,"
                            "k_top%d,v_top%d", EV_KEYS_TOP, EV_KEYS_TOP);
            for (int w = 0; w < 2; w++)
                for (int k = 0; k < EV_KEYS_BITS; k++)
                    fprintf(o->csv, ",%s_tok_q%d,%s_chan_q%d", w ? "v" : "k", ev_keys_bits[k], w ? "v" : "k",
                            ev_keys_bits[k]);
            fprintf(o->csv, "\n");
            for (int l = 0; l < L; l++) {
                char label[16];
                snprintf(label, sizeof label, "%d", l);
                csv_row(o->csv, base, n, text, m, label, &per[l]);
            }
            csv_row(o->csv, base, n, text, m, "all", &pooled);
            if (fflush(o->csv) != 0 || ferror(o->csv)) {
                msg_error("keys: writing the CSV failed");
                failed = 1;
            }
        }
    }
    free(per);
    lm_prompt_free(&pr);
    free(doc);
    ev_model_task_free(&task);
    return failed;
}
