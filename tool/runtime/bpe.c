/* bpe.c: a minimal GPT-2 style byte-level BPE tokenizer for GGUF models
 * (doc/model.md §3).
 *
 * Encoding: special tokens written literally in the text (a token string of
 * the form <|...|>) become their ids; the rest is split into pre-tokens (an
 * optional space followed by letters; one digit; an optional space followed
 * by other symbols; runs of whitespace), each pre-token's bytes are mapped to
 * the GPT-2 byte alphabet and merged pair by pair, always the pair of lowest
 * merge rank first, until no listed merge applies.  The pre-tokenizer covers
 * ASCII text as the passkey task writes it (no contractions, bytes >= 0x80
 * count as letters); it is not a full implementation of the model's
 * pre-tokenizer regular expression. */
#include <config.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bpe.h"

/* GPT-2's byte alphabet: printable bytes map to themselves, the others to
 * 256, 257, ... in byte order. */
static unsigned byte_to_cp(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
            n++;
    return 256 + n;
}

static int cp_to_byte(unsigned cp)
{
    for (unsigned b = 0; b < 256; b++)
        if (byte_to_cp(b) == cp)
            return (int)b;
    return -1;
}

/* UTF-8 of a code point below 0x800 (all the alphabet needs). */
static int put_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 63));
    return 2;
}

/* ---- string -> int hash table ------------------------------------------ */

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    return h;
}

static int table_init(lm_bpe_table *t, char **keys, int n)
{
    size_t cap = 1;
    while (cap < 2 * (size_t)n + 2) cap <<= 1;
    t->cap = cap;
    t->slot = malloc(sizeof(int) * cap);
    t->keys = keys;
    if (!t->slot)
        return KVR_ENOMEM;
    for (size_t i = 0; i < cap; i++) t->slot[i] = -1;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(keys[i]), j = fnv(keys[i], len) & (cap - 1);
        while (t->slot[j] >= 0) {
            if (!strcmp(keys[t->slot[j]], keys[i])) break;   /* first one wins */
            j = (j + 1) & (cap - 1);
        }
        if (t->slot[j] < 0) t->slot[j] = i;
    }
    return KVR_OK;
}

static int table_find(const lm_bpe_table *t, const char *s, size_t n)
{
    size_t j = fnv(s, n) & (t->cap - 1);
    while (t->slot[j] >= 0) {
        const char *k = t->keys[t->slot[j]];
        if (strlen(k) == n && !memcmp(k, s, n))
            return t->slot[j];
        j = (j + 1) & (t->cap - 1);
    }
    return -1;
}

int lm_bpe_init(lm_bpe *b, const lm_model *m)
{
    memset(b, 0, sizeof *b);
    if (!m->tokens || !m->merges)
        return lm_model_fail(KVR_EINVAL, "the model has no BPE tokenizer (tokens and merges)");
    b->m = m;
    if (table_init(&b->tok, m->tokens, m->vocab_size) != KVR_OK
        || table_init(&b->merge, m->merges, m->n_merges) != KVR_OK) {
        lm_bpe_free(b);
        return lm_model_fail(KVR_ENOMEM, "tokenizer tables: out of memory");
    }
    return KVR_OK;
}

void lm_bpe_free(lm_bpe *b)
{
    free(b->tok.slot);
    free(b->merge.slot);
    memset(b, 0, sizeof *b);
}

static int is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Length of the pre-token at s (n bytes left, n >= 1). */
static size_t pretoken(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (is_digit(s[0]))
        return 1;
    if (is_space(s[0])) {
        /* " x..." with x a letter or symbol: the space belongs to the next word */
        if (s[0] == ' ' && n > 1 && !is_space(s[1]) && !is_digit(s[1]))
            i = 1;
        else {
            while (i < n && is_space(s[i])) i++;
            /* leave the last space to the word that follows (GPT-2 \s+(?!\S)) */
            if (i < n && i > 1 && s[i - 1] == ' ' && !is_digit(s[i])) i--;
            return i;
        }
    }
    if (is_letter(s[i])) {
        while (i < n && is_letter(s[i])) i++;
    } else {
        while (i < n && !is_letter(s[i]) && !is_digit(s[i]) && !is_space(s[i])) i++;
    }
    return i;
}

/* Merge one pre-token and append its ids; returns the count or -1 when
 * out of room. */
static int encode_piece(const lm_bpe *b, const unsigned char *s, size_t n, int *ids, int cap)
{
    /* the mapped string and the symbols as (offset, length) into it */
    char *str = malloc(2 * n + 1);
    int *off = malloc(sizeof(int) * (n + 1)), *len = malloc(sizeof(int) * (n + 1));
    char *key = malloc(4 * n + 2);
    int count = -1;
    if (!str || !off || !len || !key)
        goto done;
    int ns = 0, p = 0;
    for (size_t i = 0; i < n; i++) {
        off[ns] = p;
        len[ns] = put_utf8(byte_to_cp(s[i]), str + p);
        p += len[ns++];
    }
    for (;;) {
        int best = -1, best_rank = 0;
        for (int i = 0; i + 1 < ns; i++) {
            memcpy(key, str + off[i], len[i]);
            key[len[i]] = ' ';
            memcpy(key + len[i] + 1, str + off[i + 1], len[i + 1]);
            int r = table_find(&b->merge, key, (size_t)len[i] + 1 + len[i + 1]);
            if (r >= 0 && (best < 0 || r < best_rank)) { best = i; best_rank = r; }
        }
        if (best < 0)
            break;
        len[best] += len[best + 1];
        for (int i = best + 1; i + 1 < ns; i++) { off[i] = off[i + 1]; len[i] = len[i + 1]; }
        ns--;
    }
    count = 0;
    for (int i = 0; i < ns; i++) {
        int id = table_find(&b->tok, str + off[i], (size_t)len[i]);
        if (id < 0) {   /* not in the vocabulary: one token per byte */
            for (int j = 0; j < len[i]; ) {
                int l = ((unsigned char)str[off[i] + j] >= 0xC0) ? 2 : 1;
                int bid = table_find(&b->tok, str + off[i] + j, (size_t)l);
                if (bid < 0 || count >= cap) { count = -1; goto done; }
                ids[count++] = bid;
                j += l;
            }
            continue;
        }
        if (count >= cap) { count = -1; goto done; }
        ids[count++] = id;
    }
done:
    free(str); free(off); free(len); free(key);
    return count;
}

int lm_bpe_encode(const lm_bpe *b, const char *text, int *ids, int cap, int *n_out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    int count = 0;
    while (i < n) {
        /* a special token <|...|> written literally */
        if (s[i] == '<' && i + 1 < n && s[i + 1] == '|') {
            const char *end = strstr(text + i + 2, "|>");
            if (end) {
                int id = table_find(&b->tok, text + i, (size_t)(end + 2 - (text + i)));
                if (id >= 0) {
                    if (count >= cap)
                        return lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap);
                    ids[count++] = id;
                    i = (size_t)(end + 2 - text);
                    continue;
                }
            }
        }
        size_t stop = i;   /* the pre-token must not run into a special token */
        while (stop < n && !(s[stop] == '<' && stop + 1 < n && s[stop + 1] == '|'))
            stop++;
        if (stop == i) stop = i + 1;
        size_t len = pretoken(s + i, stop - i);
        int got = encode_piece(b, s + i, len, ids + count, cap - count);
        if (got < 0)
            return lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap);
        count += got;
        i += len;
    }
    *n_out = count;
    return KVR_OK;
}

size_t lm_bpe_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap)
{
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->m->vocab_size)
            continue;
        const unsigned char *t = (const unsigned char *)b->m->tokens[ids[i]];
        for (size_t j = 0; t[j]; ) {
            unsigned cp = t[j];
            int l = 1;
            if (t[j] >= 0xC0 && t[j + 1]) { cp = ((t[j] & 31u) << 6) | (t[j + 1] & 63u); l = 2; }
            int byte = cp_to_byte(cp);
            if (byte >= 0 && k + 1 < cap) out[k++] = (char)byte;
            j += l;
        }
    }
    if (cap) out[k < cap ? k : cap - 1] = 0;
    return k;
}
