/* spm.c: the SentencePiece tokenizer of GGUF models whose
 * tokenizer.ggml.model is "llama" (Gemma; doc/model.md §2.3, §9), as
 * llama.cpp runs it.
 *
 * Encoding: first the control and user-defined tokens (token types 3 and
 * 4: <bos>, <start_of_turn>, "\n", "\n\n", runs of spaces, HTML tags...)
 * are cut out of the text wherever they occur, the longest first; each is
 * its own id.  The text between them has its spaces written as U+2581 (▁)
 * and is merged piece by piece: it starts as one symbol per UTF-8 code
 * point, and the adjacent pair whose concatenation is the vocabulary token
 * of highest score is merged first (the leftmost of equal scores), until
 * no adjacent pair is a token.  A symbol that is not a token (a code point
 * outside the vocabulary) becomes its bytes' <0xXX> tokens.  No BOS is
 * added and no space is put in front (the callers add BOS: Gemma's files
 * say tokenizer.ggml.add_space_prefix = false). */
#include <config.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bpe.h"

enum { T_CONTROL = 3, T_USER = 4, T_BYTE = 6 };

/* The first occurrence of t[0..len) in s[0..n), or NULL (memmem is not C99). */
static const char *find(const char *s, size_t n, const char *t, size_t len)
{
    while (n >= len) {
        const char *p = memchr(s, t[0], n - len + 1);
        if (!p) return NULL;
        if (!memcmp(p, t, len)) return p;
        n -= (size_t)(p + 1 - s);
        s = p + 1;
    }
    return NULL;
}

static const lm_model *cmp_model;   /* qsort's context: only lm_spm_init sorts, once */

/* Longest first; equal lengths by id. */
static int by_length(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t lx = strlen(cmp_model->tokens[x]), ly = strlen(cmp_model->tokens[y]);
    if (lx != ly) return lx > ly ? -1 : 1;
    return (x > y) - (x < y);
}

int lm_spm_init(lm_bpe *b, const lm_model *m)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->spm = 1;
    if (lm_bpe_table_init(&b->tok, m->tokens, m->vocab_size) != KVR_OK)
        return lm_model_fail(KVR_ENOMEM, "tokenizer tables: out of memory");
    b->special = malloc(sizeof(int) * (size_t)m->vocab_size);
    if (!b->special) {
        lm_bpe_free(b);
        return lm_model_fail(KVR_ENOMEM, "tokenizer tables: out of memory");
    }
    for (int i = 0; i < m->vocab_size; i++)
        if (m->tok_type && (m->tok_type[i] == T_CONTROL || m->tok_type[i] == T_USER) && m->tokens[i][0])
            b->special[b->n_special++] = i;
    cmp_model = m;
    qsort(b->special, (size_t)b->n_special, sizeof(int), by_length);
    for (int c = 0; c < 256; c++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", c);
        b->byte_id[c] = lm_bpe_table_find(&b->tok, name, strlen(name));
    }
    return KVR_OK;
}

/* ---- merging one piece ---------------------------------------------------- */

typedef struct {
    int start, len;      /* bytes of the escaped piece */
    int prev, next;      /* neighbours, -1 at the ends */
} symbol;

typedef struct {
    float score;
    int left, right, len;   /* the pair and the length of their concatenation */
} bigram;

/* Max-heap order: higher score first, then the leftmost. */
static int before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    bigram *h;
    size_t n, cap;
} heap;

static int heap_push(heap *q, bigram g)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 64;
        bigram *h = realloc(q->h, sizeof *h * cap);
        if (!h) return -1;
        q->h = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i > 0 && before(&g, &q->h[(i - 1) / 2])) {
        q->h[i] = q->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->h[i] = g;
    return 0;
}

static bigram heap_pop(heap *q)
{
    bigram top = q->h[0], last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && before(&q->h[c + 1], &q->h[c])) c++;
        if (!before(&q->h[c], &last)) break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n) q->h[i] = last;
    return top;
}

/* The pair (left, right) as a candidate when it spells a token. */
static int try_pair(const lm_bpe *b, const char *s, const symbol *sy, int left, int right, heap *q)
{
    if (left < 0 || right < 0)
        return 0;
    int len = sy[left].len + sy[right].len;
    int id = lm_bpe_table_find(&b->tok, s + sy[left].start, (size_t)len);
    if (id < 0)
        return 0;
    bigram g = {b->m->tok_scores[id], left, right, len};
    return heap_push(q, g);
}

/* Append the ids of one escaped piece s[0..n) to ids[*count..cap).
 * Returns KVR_OK, KVR_EINVAL when out of room, KVR_ENOMEM. */
static int merge_piece(const lm_bpe *b, const char *s, int n, int *ids, int cap, int *count)
{
    symbol *sy = malloc(sizeof *sy * (size_t)(n + 1));
    heap q = {NULL, 0, 0};
    int status = KVR_OK, ns = 0;
    if (!sy) return lm_model_fail(KVR_ENOMEM, "tokenizer: out of memory");
    for (int i = 0; i < n; ns++) {   /* one symbol per UTF-8 code point (by its lead byte) */
        unsigned c = (unsigned char)s[i];
        int l = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (l > n - i) l = n - i;
        sy[ns].start = i;
        sy[ns].len = l;
        sy[ns].prev = ns - 1;
        sy[ns].next = i + l < n ? ns + 1 : -1;
        i += l;
    }
    for (int i = 0; i + 1 < ns; i++)
        if (try_pair(b, s, sy, i, i + 1, &q)) goto oom;
    while (q.n) {
        bigram g = heap_pop(&q);
        symbol *L = &sy[g.left], *R = &sy[g.right];
        if (L->len == 0 || R->len == 0 || L->len + R->len != g.len)
            continue;   /* stale: one side has merged since */
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = g.left;
        if (try_pair(b, s, sy, L->prev, g.left, &q) || try_pair(b, s, sy, g.left, L->next, &q))
            goto oom;
    }
    for (int i = 0; i >= 0 && ns > 0; i = sy[i].next) {
        int id = lm_bpe_table_find(&b->tok, s + sy[i].start, (size_t)sy[i].len);
        if (id >= 0) {
            if (*count >= cap) { status = KVR_EINVAL; break; }
            ids[(*count)++] = id;
            continue;
        }
        for (int j = 0; j < sy[i].len; j++) {   /* byte fallback */
            int bid = b->byte_id[(unsigned char)s[sy[i].start + j]];
            if (*count >= cap) { status = KVR_EINVAL; break; }
            ids[(*count)++] = bid >= 0 ? bid : (b->m->vocab_size > 3 ? 3 : 0);
        }
        if (status != KVR_OK) break;
    }
    free(sy);
    free(q.h);
    if (status == KVR_EINVAL)
        return lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap);
    return status;
oom:
    free(sy);
    free(q.h);
    return lm_model_fail(KVR_ENOMEM, "tokenizer: out of memory");
}

int lm_spm_encode(const lm_bpe *b, const char *text, int *ids, size_t *ends, int cap, int *n_out)
{
    size_t n = strlen(text);
    /* tok_at[i]: the special token that starts at byte i, -1 none; cut[i]: byte i is in one */
    int *tok_at = malloc(sizeof(int) * (n + 1));
    unsigned char *cut = calloc(n + 1, 1);
    char *esc = malloc(3 * n + 1);
    int status = KVR_OK, count = 0;
    if (!tok_at || !cut || !esc) {
        status = lm_model_fail(KVR_ENOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) tok_at[i] = -1;
    for (int k = 0; k < b->n_special; k++) {   /* the longest first, each everywhere it fits */
        const char *t = b->m->tokens[b->special[k]];
        size_t len = strlen(t);
        const char *p = text;
        while ((p = find(p, n - (size_t)(p - text), t, len)) != NULL) {
            size_t at = (size_t)(p - text), j;
            for (j = 0; j < len && !cut[at + j]; j++) ;
            if (j < len) { p++; continue; }   /* overlaps one cut already */
            memset(cut + at, 1, len);
            tok_at[at] = b->special[k];
            p += len;
        }
    }
    for (size_t i = 0; i < n; ) {
        if (tok_at[i] >= 0) {
            size_t len = strlen(b->m->tokens[tok_at[i]]);
            if (count >= cap) { status = lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap); goto done; }
            if (ids) ids[count++] = tok_at[i];
            else ends[count++] = i + len;
            i += len;
            continue;
        }
        size_t j = i;   /* the text up to the next cut */
        int e = 0;
        while (j < n && !cut[j]) {
            if (text[j] == ' ') { memcpy(esc + e, "\xe2\x96\x81", 3); e += 3; }
            else esc[e++] = text[j];
            j++;
        }
        if (ids)
            status = merge_piece(b, esc, e, ids, cap, &count);
        else if (count < cap)
            ends[count++] = j;
        else
            status = lm_model_fail(KVR_EINVAL, "text needs more than %d pieces", cap);
        if (status != KVR_OK)
            goto done;
        i = j;
    }
    *n_out = count;
done:
    free(tok_at);
    free(cut);
    free(esc);
    return status;
}

size_t lm_spm_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap)
{
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->m->vocab_size)
            continue;
        int ty = b->m->tok_type ? b->m->tok_type[ids[i]] : 1;
        const char *t = b->m->tokens[ids[i]];
        if (ty == T_CONTROL)
            continue;
        if (ty == T_BYTE) {
            unsigned v;
            if (sscanf(t, "<0x%2X>", &v) == 1 && k + 1 < cap) out[k++] = (char)v;
            continue;
        }
        for (size_t j = 0; t[j]; ) {
            if (!memcmp(t + j, "\xe2\x96\x81", 3)) {
                if (k + 1 < cap) out[k++] = ' ';
                j += 3;
            } else {
                if (k + 1 < cap) out[k++] = t[j];
                j++;
            }
        }
    }
    if (cap) out[k < cap ? k : cap - 1] = 0;
    return k;
}
