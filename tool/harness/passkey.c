/* passkey.c: the passkey retrieval task for instruction models
 * (doc/model.md §4.3).
 *
 * A trial: a seeded five-digit key is stated once early in a long filler
 * text inside a chat prompt that ends with the question and the start of
 * the answer ("The pass key is"); the model then decodes greedily up to
 * EV_PASSKEY_ANSWER tokens.  The trial succeeds when the decoded answer
 * contains the key's five digits in a row.  The prompt's computation is
 * shared by every method; each method prefills its own cache from it and
 * decodes. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_eval.h"

static const char filler[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
static const char head[] =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nThere is a pass key hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the pass key.\n";
static const char tail[] =
    "\nWhat is the pass key?<|im_end|>\n<|im_start|>assistant\nThe pass key is";

static uint64_t mix(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

int ev_passkey_prompt(const lm_bpe *b, int context, uint64_t seed, int trial,
                       int *ids, int cap, int *n_out, char key[6])
{
    uint64_t r1 = mix(seed ^ mix((uint64_t)trial)), r2 = mix(r1);
    snprintf(key, 6, "%05d", 10000 + (int)(r1 % 90000));
    /* tokens of the fixed parts, to size the filler */
    int fixed, one;
    char needle[96];
    snprintf(needle, sizeof needle, "The pass key is %s. Remember it. %s is the pass key. ", key, key);
    size_t fixed_len = strlen(head) + strlen(needle) + strlen(tail) + 1;
    char *text = malloc(fixed_len);
    if (!text)
        return lm_model_fail(KVR_ENOMEM, "passkey prompt: out of memory");
    snprintf(text, fixed_len, "%s%s%s", head, needle, tail);
    int status = lm_bpe_encode(b, text, ids, cap, &fixed);
    free(text);
    if (status == KVR_OK)
        status = lm_bpe_encode(b, filler, ids, cap, &one);
    if (status != KVR_OK)
        return status;
    int reps = (context - EV_PASSKEY_ANSWER - fixed) / one;
    if (reps < 2)
        return lm_model_fail(KVR_EINVAL, "passkey: context %d leaves no room for filler", context);
    /* the key goes early: after 5% to 25% of the filler */
    int before = (int)((0.05 + 0.20 * (double)(r2 >> 11) * 0x1.0p-53) * reps);
    size_t len = fixed_len + (size_t)reps * strlen(filler);
    text = malloc(len);
    if (!text)
        return lm_model_fail(KVR_ENOMEM, "passkey prompt: out of memory");
    char *p = text;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < before; i++) p += sprintf(p, "%s", filler);
    p += sprintf(p, "%s", needle);
    for (int i = before; i < reps; i++) p += sprintf(p, "%s", filler);
    sprintf(p, "%s", tail);
    status = lm_bpe_encode(b, text, ids, cap, n_out);
    free(text);
    return status;
}

int ev_passkey_answer(const lm_model *m, const lm_bpe *b, const lm_prompt *pr,
                       const kvr_config *cfg, const char *key, int *correct, char *answer, size_t cap)
{
    kvr_cache *c = NULL;
    lm_model_state s;
    int status = lm_model_cache(m, cfg, &c);
    if (status != KVR_OK)
        return lm_model_fail(status, "passkey cache: %s", kvr_last_error());
    float *logits = malloc(sizeof(float) * (size_t)m->vocab_size);   /* [vocab] */
    if (!logits || (status = lm_model_state_init(&s, m)) != KVR_OK) {
        free(logits);
        kvr_cache_free(c);
        return status != KVR_OK ? status : lm_model_fail(KVR_ENOMEM, "out of memory");
    }
    int ids[EV_PASSKEY_ANSWER], n = 0;
    status = lm_prompt_prefill(m, pr, c);
    memcpy(logits, pr->logits, sizeof(float) * (size_t)m->vocab_size);
    int end = -1;   /* the chat end-of-turn token, if the vocabulary has one */
    for (int i = 0; i < m->vocab_size && m->tokens; i++)
        if (!strcmp(m->tokens[i], "<|im_end|>")) { end = i; break; }
    while (status == KVR_OK && n < EV_PASSKEY_ANSWER) {
        int best = 0;
        for (int i = 1; i < m->vocab_size; i++)
            if (logits[i] > logits[best]) best = i;
        if (best == m->eos || best == end)
            break;
        ids[n++] = best;
        if (n < EV_PASSKEY_ANSWER)
            status = lm_model_step(m, &s, c, best, logits);
    }
    free(logits);
    lm_model_state_free(&s);
    kvr_cache_free(c);
    if (status != KVR_OK)
        return status;
    lm_bpe_decode(b, ids, n, answer, cap);
    *correct = strstr(answer, key) != NULL;
    return KVR_OK;
}
