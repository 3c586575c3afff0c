/* passkey.c: the passkey retrieval task for instruction models
 * (doc/model.md §4.3).
 *
 * A trial: a seeded five-digit key is stated once in a long filler text
 * inside a chat prompt that ends with the question and the start of the
 * answer ("The pass key is"); trial i of N puts it after (i + 0.5) / N of
 * the filler, so the trials' depths are spread evenly over the context.
 * With the question late (--late-question), the caches are prefilled
 * from the document alone and the question's tokens arrive as ordinary
 * appends after compression.  The model then decodes greedily up to EV_PASSKEY_ANSWER tokens; the trial
 * succeeds when the decoded answer contains the key's five digits in a
 * row.  The prompt's computation is shared by every method; each method
 * prefills its own cache from it, and the methods decode in lock step. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_eval.h"

static const char filler[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
/* The chat templates: the model's own turn markers around the same words.
 * ChatML (SmolLM2) and Gemma's turns; a model gets the first whose start
 * marker is a token of its vocabulary (ev_passkey_chat). */
typedef struct {
    const char *marker;   /* a token that names the template */
    const char *head, *tail, *end;
} chat;

static const chat chats[] = {
    {"<|im_start|>",
     "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
     "<|im_start|>user\nThere is a pass key hidden inside a lot of irrelevant text. Find it and memorize it. "
     "I will quiz you about the pass key.\n",
     "\nWhat is the pass key?<|im_end|>\n<|im_start|>assistant\nThe pass key is", "<|im_end|>"},
    {"<start_of_turn>",   /* Gemma: no system turn; BOS comes first (add_bos) */
     "<start_of_turn>user\nThere is a pass key hidden inside a lot of irrelevant text. Find it and memorize it. "
     "I will quiz you about the pass key.\n",
     "\nWhat is the pass key?<end_of_turn>\n<start_of_turn>model\nThe pass key is", "<end_of_turn>"},
};

static int token_id(const lm_model *m, const char *s)
{
    for (int i = 0; m->tokens && i < m->vocab_size; i++)
        if (!strcmp(m->tokens[i], s)) return i;
    return -1;
}

int ev_passkey_chat(const lm_model *m)
{
    for (int i = 0; i < (int)(sizeof chats / sizeof chats[0]); i++)
        if (token_id(m, chats[i].marker) >= 0) return i;
    return -1;
}

static uint64_t mix(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Tokens of the prompt's fixed parts (head, the key sentence for `key`,
 * tail) in *fixed and of one filler sentence in *one; encoded into a buffer
 * of their own, so a short context does not fail here. */
static int fixed_tokens(const lm_bpe *b, const char *key, int *fixed, int *one)
{
    int ci = ev_passkey_chat(b->m);
    if (ci < 0)
        return lm_model_fail(KVR_EINVAL, "passkey: the model has no chat template the prompt knows (ChatML, Gemma)");
    const char *head = chats[ci].head, *tail = chats[ci].tail;
    char needle[96];
    snprintf(needle, sizeof needle, "The pass key is %s. Remember it. %s is the pass key. ", key, key);
    size_t fixed_len = strlen(head) + strlen(needle) + strlen(tail) + 1;
    char *text = malloc(fixed_len);
    int *ids = malloc(sizeof(int) * fixed_len);   /* a token holds at least one byte */
    if (!text || !ids) {
        free(text);
        free(ids);
        return lm_model_fail(KVR_ENOMEM, "passkey prompt: out of memory");
    }
    snprintf(text, fixed_len, "%s%s%s", head, needle, tail);
    int status = lm_bpe_encode(b, text, ids, (int)fixed_len, fixed);
    if (status == KVR_OK)
        status = lm_bpe_encode(b, filler, ids, (int)fixed_len, one);
    if (status == KVR_OK && b->m->add_bos)
        (*fixed)++;   /* BOS */
    free(text);
    free(ids);
    return status;
}

int ev_passkey_min_context(const lm_bpe *b, int *min)
{
    int worst = 0, one = 1;
    for (int d = 1; d <= 9; d++) {                /* keys 11111 .. 99999, and 10000 */
        char key[6];
        snprintf(key, sizeof key, "%05d", d == 1 ? 10000 : 11111 * d);
        int fixed;
        int status = fixed_tokens(b, key, &fixed, &one);
        if (status != KVR_OK)
            return status;
        if (fixed > worst)
            worst = fixed;
    }
    *min = EV_PASSKEY_ANSWER + worst + 2 * one + 4;   /* 4: a key that tokenizes longer */
    return KVR_OK;
}

int ev_passkey_prompt(const lm_bpe *b, int context, uint64_t seed, int trial, int n_trials,
                      int *ids, int cap, int *n_out, int *n_doc, char key[6])
{
    uint64_t r1 = mix(seed ^ mix((uint64_t)trial));
    if (n_trials < 1 || trial < 0 || trial >= n_trials)
        return lm_model_fail(KVR_EINVAL, "passkey: trial %d of %d", trial, n_trials);
    snprintf(key, 6, "%05d", 10000 + (int)(r1 % 90000));
    /* tokens of the fixed parts, to size the filler */
    int fixed, one;
    int status = fixed_tokens(b, key, &fixed, &one);
    if (status != KVR_OK)
        return status;
    int reps = (context - EV_PASSKEY_ANSWER - fixed) / one;
    if (reps < 2)
        return lm_model_fail(KVR_EINVAL, "passkey: --context %d is below the %d positions a passkey prompt needs",
                             context, EV_PASSKEY_ANSWER + fixed + 2 * one);
    const chat *t = &chats[ev_passkey_chat(b->m)];   /* fixed_tokens found one */
    const char *head = t->head, *tail = t->tail;
    char needle[96];
    snprintf(needle, sizeof needle, "The pass key is %s. Remember it. %s is the pass key. ", key, key);
    size_t fixed_len = strlen(head) + strlen(needle) + strlen(tail) + 1;
    /* the key's depth: after (trial + 0.5) / n_trials of the filler */
    int before = (int)(((double)trial + 0.5) / (double)n_trials * reps);
    size_t len = fixed_len + (size_t)reps * strlen(filler);
    char *text = malloc(len);
    if (!text)
        return lm_model_fail(KVR_ENOMEM, "passkey prompt: out of memory");
    char *p = text;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < before; i++) p += sprintf(p, "%s", filler);
    p += sprintf(p, "%s", needle);
    for (int i = before; i < reps; i++) p += sprintf(p, "%s", filler);
    /* the document, then the question on its own: the same ids in both
     * question settings */
    int nd = 0, nq = 0, bos = b->m->add_bos ? 1 : 0;
    if (bos) {
        if (cap < 1) status = lm_model_fail(KVR_EINVAL, "passkey: no room for BOS");
        else ids[0] = b->m->bos;
    }
    if (status == KVR_OK)
        status = lm_bpe_encode(b, text, ids + bos, cap - bos, &nd);
    nd += bos;
    if (status == KVR_OK)
        status = lm_bpe_encode(b, tail, ids + nd, cap - nd, &nq);
    free(text);
    if (status == KVR_OK) {
        *n_out = nd + nq;
        if (n_doc) *n_doc = nd;
    }
    return status;
}

/* One lock-step decode of the k caches listed (cache idx[j] takes tok[j]);
 * a cache that fails gets its status and stops running.  KVR_OK, or
 * KVR_ENOMEM.   idx, tok: [k] */
static int step_caches(const lm_model *m, int k, const int *idx, lm_model_state **rs, kvr_cache **rc,
                       const int *tok, float **rl, int *status, int *run, int threads)
{
    int *st = malloc(sizeof(int) * (size_t)k);
    if (!st) return lm_model_fail(KVR_ENOMEM, "passkey: out of memory");
    for (int j = 0; j < k; j++) st[j] = KVR_OK;
    ev_model_step_threads(m, k, rs, rc, tok, rl, st, threads, NULL);
    for (int j = 0; j < k; j++)
        if (st[j] != KVR_OK) { status[idx[j]] = st[j]; run[idx[j]] = 0; }
    free(st);
    return KVR_OK;
}

int ev_passkey_answers(const lm_model *m, const lm_bpe *b, const lm_prompt *pr, int n_late,
                       const int *late, int n, const kvr_config *cfgs, const char *key, int *correct,
                       int *status, char *answer0, size_t cap, int *ids0, int *len0, int threads)
{
    int V = m->vocab_size, fail = KVR_OK;
    kvr_cache **c = calloc((size_t)n + 1, sizeof *c);
    lm_model_state *s = calloc((size_t)n + 1, sizeof *s);
    float **lg = calloc((size_t)n + 1, sizeof *lg);
    int *ids = malloc(sizeof(int) * ((size_t)n * EV_PASSKEY_ANSWER + 1));   /* [n][EV_PASSKEY_ANSWER] */
    int *len = calloc((size_t)n + 1, sizeof *len), *run = malloc(sizeof(int) * ((size_t)n + 1));
    int *tok = malloc(sizeof(int) * ((size_t)n + 1)), *idx = malloc(sizeof(int) * ((size_t)n + 1));
    kvr_cache **rc = malloc(sizeof *rc * ((size_t)n + 1));
    lm_model_state **rs = malloc(sizeof *rs * ((size_t)n + 1));
    float **rl = malloc(sizeof *rl * ((size_t)n + 1));
    if (!c || !s || !lg || !ids || !len || !run || !tok || !idx || !rc || !rs || !rl) {
        fail = lm_model_fail(KVR_ENOMEM, "passkey: out of memory");
        goto done;
    }
    int ci = ev_passkey_chat(m);   /* the chat end-of-turn token, if the vocabulary has one */
    int end = ci >= 0 ? token_id(m, chats[ci].end) : -1;
    for (int i = 0; i < n; i++) {
        correct[i] = 0;
        status[i] = lm_model_cache(m, &cfgs[i], &c[i]);
        if (status[i] != KVR_OK) {
            lm_model_fail(status[i], "passkey cache: %s", kvr_last_error());
            continue;
        }
        lg[i] = malloc(sizeof(float) * (size_t)V);
        if (!lg[i]) status[i] = lm_model_fail(KVR_ENOMEM, "passkey: out of memory");
        else status[i] = lm_model_state_init(&s[i], m);
        if (status[i] == KVR_OK)
            status[i] = lm_prompt_prefill(m, pr, &s[i], c[i]);
        if (status[i] == KVR_OK)
            memcpy(lg[i], pr->logits, sizeof(float) * (size_t)V);
        run[i] = status[i] == KVR_OK;
    }
    /* the question after compression: ordinary appends, in lock step */
    for (int q = 0; q < n_late; q++) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!run[i]) continue;
            idx[k] = i; tok[k] = late[q]; rc[k] = c[i]; rs[k] = &s[i]; rl[k] = lg[i];
            k++;
        }
        if (k == 0) break;
        if ((fail = step_caches(m, k, idx, rs, rc, tok, rl, status, run, threads)) != KVR_OK) goto done;
    }
    /* greedy decoding: each step takes every cache's argmax; a cache stops
     * at EOS, the end of turn, or EV_PASSKEY_ANSWER tokens */
    for (int step = 0; step < EV_PASSKEY_ANSWER; step++) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!run[i]) continue;
            int best = 0;
            for (int j = 1; j < V; j++)
                if (lg[i][j] > lg[i][best]) best = j;
            if (best == m->eos || best == end) { run[i] = 0; continue; }
            ids[(size_t)i * EV_PASSKEY_ANSWER + len[i]++] = best;
            if (step + 1 == EV_PASSKEY_ANSWER) { run[i] = 0; continue; }
            idx[k] = i; tok[k] = best; rc[k] = c[i]; rs[k] = &s[i]; rl[k] = lg[i];
            k++;
        }
        if (k == 0) break;
        if ((fail = step_caches(m, k, idx, rs, rc, tok, rl, status, run, threads)) != KVR_OK) goto done;
    }
    for (int i = 0; i < n; i++) {
        if (status[i] != KVR_OK) continue;
        char answer[256];
        lm_bpe_decode(b, ids + (size_t)i * EV_PASSKEY_ANSWER, len[i], answer, sizeof answer);
        correct[i] = strstr(answer, key) != NULL;
        if (i == 0 && answer0) snprintf(answer0, cap, "%s", answer);
        if (i == 0 && ids0) {
            memcpy(ids0, ids, sizeof(int) * (size_t)len[0]);
            *len0 = len[0];
        }
    }
done:
    for (int i = 0; c && i < n; i++) {
        kvr_cache_free(c[i]);
        if (s) lm_model_state_free(&s[i]);
        if (lg) free(lg[i]);
    }
    free(c); free(s); free(lg); free(ids); free(len); free(run); free(tok); free(idx);
    free(rc); free(rs); free(rl);
    return fail;
}
