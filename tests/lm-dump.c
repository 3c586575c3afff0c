/* lm-dump: the runtime's tokens and logits for tests/llamacpp.sh, which
 * compares them with llama.cpp's (doc/model.md §8).
 *
 *   lm-dump tokens MODEL TEXT          ids of TEXT, one per line, on stdout
 *   lm-dump logits MODEL IDS OUT P     full float32 cache: the first P ids
 *                                      through the prompt path
 *                                      (lm_model_prompt, lm_prompt_prefill),
 *                                      the rest one decode step each
 *                                      (lm_model_step); OUT gets the float32
 *                                      logits after positions P-1 .. n-1,
 *                                      [n-P+1][vocab_size], row-major
 *   lm-dump passkey MODEL CONTEXT N TRIAL SEED ELEM
 *                                      trial TRIAL of N of `kvreviver eval
 *                                      --passkey N --context CONTEXT --seed
 *                                      SEED` (doc/model.md §4.3): the ids of
 *                                      ev_passkey_prompt, then the full
 *                                      cache's greedy answer in ELEM from
 *                                      ev_passkey_answers (up to
 *                                      EV_PASSKEY_ANSWER tokens, stopping at
 *                                      EOS or the end of turn); stdout:
 *                                      "key K", "prompt ID...", "answer
 *                                      ID...", "text T", "answered 0|1"
 *                                      (tests/llamacpp-passkey.py)
 * Exit 0, or 1 with a message on stderr. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"
#include "runtime/model.h"
#include "runtime/bpe.h"
#include "harness/model_eval.h"

static char *read_file(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (t = malloc((size_t)*n + 1)) && fread(t, 1, (size_t)*n, f) == (size_t)*n)
        t[*n] = '\0';
    else {
        free(t);
        t = NULL;
    }
    fclose(f);
    return t;
}

static int tokens(const lm_model *m, const char *path)
{
    long n;
    char *text = read_file(path, &n);
    if (!text) { fprintf(stderr, "lm-dump: cannot read %s\n", path); return 1; }
    lm_bpe b;
    int *ids = malloc(sizeof(int) * ((size_t)n + 1)), k = 0, rc = 1;
    if (!ids || lm_bpe_init(&b, m) != KVR_OK) {
        fprintf(stderr, "lm-dump: %s\n", ids ? lm_model_error() : "out of memory");
        free(ids); free(text);
        return 1;
    }
    if (lm_bpe_encode(&b, text, ids, (int)n + 1, &k) != KVR_OK)
        fprintf(stderr, "lm-dump: %s\n", lm_model_error());
    else {
        for (int i = 0; i < k; i++) printf("%d\n", ids[i]);
        rc = fflush(stdout) != 0;
    }
    lm_bpe_free(&b);
    free(ids); free(text);
    return rc;
}

static int logits(const lm_model *m, const char *ids_path, const char *out_path, int P)
{
    FILE *f = fopen(ids_path, "r");
    if (!f) { fprintf(stderr, "lm-dump: cannot read %s\n", ids_path); return 1; }
    int cap = 1024, n = 0, id, rc = 1;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    while (ids && fscanf(f, "%d", &id) == 1) {
        if (n == cap) { int *g = realloc(ids, sizeof(int) * (size_t)(cap *= 2)); if (!g) { free(ids); ids = NULL; break; } ids = g; }
        ids[n++] = id;
    }
    fclose(f);
    if (!ids || P < 1 || P > n) { fprintf(stderr, "lm-dump: need 1 <= P <= %d ids\n", n); free(ids); return 1; }
    kvr_config cfg;
    kvr_cache *c = NULL;
    lm_prompt pr = {0};
    lm_model_state s = {0};
    float *lg = malloc(sizeof(float) * (size_t)m->vocab_size);   /* [vocab_size] */
    FILE *o = fopen(out_path, "wb");
    if (!lg || !o || kvr_method_config("full", 1.0, n, m->head_dim, KVR_F32, &cfg) != KVR_OK
        || lm_model_cache(m, &cfg, &c) != KVR_OK || lm_model_state_init(&s, m) != KVR_OK
        || lm_model_prompt(m, P, ids, 256, &pr) != KVR_OK || lm_prompt_prefill(m, &pr, &s, c) != KVR_OK) {
        fprintf(stderr, "lm-dump: %s / %s\n", lm_model_error(), kvr_last_error());
        goto done;
    }
    if (fwrite(pr.logits, sizeof(float), (size_t)m->vocab_size, o) != (size_t)m->vocab_size)
        goto done;
    for (int t = P; t < n; t++) {
        if (lm_model_step(m, &s, c, ids[t], lg) != KVR_OK) {
            fprintf(stderr, "lm-dump: %s\n", lm_model_error());
            goto done;
        }
        if (fwrite(lg, sizeof(float), (size_t)m->vocab_size, o) != (size_t)m->vocab_size)
            goto done;
    }
    rc = 0;
done:
    if (o && fclose(o) != 0) rc = 1;
    free(lg); free(ids);
    lm_prompt_free(&pr);
    lm_model_state_free(&s);
    kvr_cache_free(c);
    return rc;
}

static int passkey(const lm_model *m, int context, int n_trials, int trial, unsigned long long seed,
                   const char *elem_name)
{
    kvr_elem elem;
    if (kvr_elem_parse(elem_name, &elem) != KVR_OK) { fprintf(stderr, "lm-dump: elem %s\n", elem_name); return 1; }
    lm_bpe b;
    if (lm_bpe_init(&b, m) != KVR_OK) { fprintf(stderr, "lm-dump: %s\n", lm_model_error()); return 1; }
    int n = 0, n_doc = 0, rc = 1, len = 0, right = 0, st = KVR_OK, ans[EV_PASSKEY_ANSWER];
    int *ids = malloc(sizeof(int) * (size_t)(context > 0 ? context : 1));   /* [context] */
    char key[6], text[256];
    kvr_config cfg;
    lm_prompt pr = {0};
    if (!ids || ev_passkey_prompt(&b, context, (uint64_t)seed, trial, n_trials, ids, context, &n, &n_doc, key)
            != KVR_OK) {
        fprintf(stderr, "lm-dump: %s\n", ids ? lm_model_error() : "out of memory");
        goto done;
    }
    printf("key %s\nprompt", key);   /* first, so that a reader can start on them */
    for (int i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
    fflush(stdout);
    /* the full cache's answer, exactly as `kvreviver eval` decodes it */
    if (kvr_method_config("full", 1.0, n + EV_PASSKEY_ANSWER, m->head_dim, elem, &cfg) != KVR_OK
        || lm_model_prompt(m, n, ids, 256, &pr) != KVR_OK
        || ev_passkey_answers(m, &b, &pr, 0, NULL, 1, &cfg, key, &right, &st, text, sizeof text, ans, &len, 1)
               != KVR_OK || st != KVR_OK) {
        fprintf(stderr, "lm-dump: %s / %s\n", lm_model_error(), kvr_last_error());
        goto done;
    }
    printf("answer");
    for (int i = 0; i < len; i++) printf(" %d", ans[i]);
    for (char *p = text; *p; p++)
        if (*p == '\n') *p = ' ';
    printf("\ntext %s\nanswered %d\n", text, right);
    rc = fflush(stdout) != 0;
done:
    free(ids);
    lm_prompt_free(&pr);
    lm_bpe_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "tokens") && strcmp(argv[1], "logits") && strcmp(argv[1], "passkey"))
        || (!strcmp(argv[1], "logits") && argc != 6) || (!strcmp(argv[1], "passkey") && argc != 8)) {
        fprintf(stderr, "usage: lm-dump tokens MODEL TEXT | lm-dump logits MODEL IDS OUT P | "
                        "lm-dump passkey MODEL CONTEXT N TRIAL SEED ELEM\n");
        return 2;
    }
    lm_model m;
    if (lm_model_load(&m, argv[2]) != KVR_OK) {
        fprintf(stderr, "lm-dump: %s\n", lm_model_error());
        return 1;
    }
    int rc = !strcmp(argv[1], "tokens") ? tokens(&m, argv[3])
             : !strcmp(argv[1], "logits") ? logits(&m, argv[3], argv[4], atoi(argv[5]))
             : passkey(&m, atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), strtoull(argv[6], NULL, 10), argv[7]);
    lm_model_free(&m);
    return rc;
}
