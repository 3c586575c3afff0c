/* bpe.c: the GPT-2 style byte-level BPE tokenizer of GGUF models
 * (doc/model.md §2.3), as llama.cpp runs it.
 *
 * Encoding: special tokens written literally in the text (a token string of
 * the form <|...|>) become their ids; the rest is cut into pieces by the
 * pre-tokenizer the file names (tokenizer.ggml.pre: gpt2 or smollm, below),
 * each piece's bytes are mapped to the GPT-2 byte alphabet and merged pair
 * by pair, always the pair of lowest merge rank first (the leftmost of
 * equals), until no listed merge applies.  A merged symbol that is not in
 * the vocabulary falls back to one token per byte. */
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

int lm_bpe_table_init(lm_bpe_table *t, char **keys, int n)
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

int lm_bpe_table_find(const lm_bpe_table *t, const char *s, size_t n)
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
    if (m->tokens && !strcmp(m->tok_model, "llama") && m->tok_scores)
        return lm_spm_init(b, m);
    if (m->tok_model[0] && strcmp(m->tok_model, "gpt2") && strcmp(m->tok_model, "llama"))
        return lm_model_fail(KVR_EFORMAT, "tokenizer.ggml.model = \"%s\" is not supported (supported: gpt2, llama)",
                             m->tok_model);
    if (!m->tokens || !m->merges)
        return lm_model_fail(KVR_EINVAL, "the model has no BPE tokenizer (tokens and merges)");
    b->m = m;
    /* the pre-tokenizer the file names (llama.cpp's names) */
    static const struct { const char *name; int pre; } pres[] = {
        {"gpt2", LM_PRE_GPT2}, {"smollm", LM_PRE_SMOLLM},
    };
    b->pre = -1;
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++)
        if (!strcmp(m->tok_pre, pres[i].name))
            b->pre = pres[i].pre;
    if (b->pre < 0)
        return lm_model_fail(KVR_EFORMAT,
                             "tokenizer.ggml.pre = \"%s\" is not supported (supported: gpt2, smollm)",
                             m->tok_pre[0] ? m->tok_pre : "(missing)");
    if (lm_bpe_table_init(&b->tok, m->tokens, m->vocab_size) != KVR_OK
        || lm_bpe_table_init(&b->merge, m->merges, m->n_merges) != KVR_OK) {
        lm_bpe_free(b);
        return lm_model_fail(KVR_ENOMEM, "tokenizer tables: out of memory");
    }
    return KVR_OK;
}

void lm_bpe_free(lm_bpe *b)
{
    free(b->tok.slot);
    free(b->merge.slot);
    free(b->special);
    memset(b, 0, sizeof *b);
}

/* ---- the pre-tokenizer (doc/model.md §2.3) --------------------------------
 *
 * Text is cut into pieces before merging, by the rules the GGUF names in
 * tokenizer.ggml.pre.  Both rule sets implemented here end in GPT-2's
 * pattern
 *     's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
 * tried in that order at each position of a chunk (the first alternative
 * that matches wins, each as long as it can be); "smollm" first cuts every
 * number code point (\p{N}) into a chunk of its own.  A chunk ends a match:
 * nothing looks past it, so "x 1" gives "x", " ", "1" under smollm. */

enum { UC_LETTER = 1, UC_NUMBER = 2, UC_SPACE = 4 };

#include "unicode-table.h"

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;   /* binary search for the range holding cp */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

#define N_RANGES(a) (sizeof (a) / sizeof (a)[0])

/* The classes of one code point: letter (category L), number (category N),
 * white space (the White_Space property). */
static int uc_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp | 32) >= 'a' && (cp | 32) <= 'z') return UC_LETTER;
        if (cp >= '0' && cp <= '9') return UC_NUMBER;
        return (cp == ' ' || (cp >= 9 && cp <= 13)) ? UC_SPACE : 0;
    }
    if (in_ranges(uc_letter, N_RANGES(uc_letter), cp)) return UC_LETTER;
    if (in_ranges(uc_number, N_RANGES(uc_number), cp)) return UC_NUMBER;
    if (in_ranges(uc_space, N_RANGES(uc_space), cp)) return UC_SPACE;
    return 0;
}

/* One UTF-8 code point at s (n >= 1 bytes left); its length in *len.  A byte
 * that does not start a valid sequence stands for itself (length 1, class
 * 0): eval refuses text that is not UTF-8, so only raw API callers see it. */
static uint32_t utf8_next(const unsigned char *s, size_t n, int *len)
{
    unsigned c = s[0];
    int l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (l == 0 || (size_t)l > n) { *len = 1; return 0xFFFFFFFFu; }
    uint32_t cp = l == 1 ? c : c & (0x7Fu >> l);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) { *len = 1; return 0xFFFFFFFFu; }
        cp = (cp << 6) | (s[i] & 63u);
    }
    *len = l;
    return cp;
}

/* A chunk's code points: cp[i] and its class cl[i]; class of a position
 * outside the chunk is -1 (no class at all, so no alternative continues). */
typedef struct {
    const uint32_t *cp;   /* [n] */
    const int *cl;        /* [n] */
    int n;
} uc_chunk;

static int cls_at(const uc_chunk *c, int i) { return i < c->n ? c->cl[i] : -1; }

/* Length (in code points) of the GPT-2 match at i of chunk c (i < c->n). */
static int gpt2_match(const uc_chunk *c, int i)
{
    uint32_t x = c->cp[i];
    /* 's 't 'm 'd 're 've 'll (lower case only) */
    if (x == '\'' && i + 1 < c->n) {
        uint32_t y = c->cp[i + 1];
        if (y == 's' || y == 't' || y == 'm' || y == 'd')
            return 2;
        if (i + 2 < c->n) {
            uint32_t z = c->cp[i + 2];
            if ((y == 'r' && z == 'e') || (y == 'v' && z == 'e') || (y == 'l' && z == 'l'))
                return 3;
        }
    }
    int j = i + (x == ' ');       /* the optional leading space */
    int k = cls_at(c, j);
    if (k == UC_LETTER || k == UC_NUMBER) {            /* ?\p{L}+  and  ?\p{N}+ */
        while (cls_at(c, j) == k) j++;
        return j - i;
    }
    if (k == 0) {                                      /* ?[^\s\p{L}\p{N}]+ */
        while (cls_at(c, j) == 0) j++;
        return j - i;
    }
    int w = 0;                                         /* white space */
    while (cls_at(c, i + w) == UC_SPACE) w++;
    if (w > 1 && i + w < c->n)                         /* \s+(?!\S): leave the last */
        return w - 1;
    return w > 0 ? w : 1;                              /* \s+ (or one code point) */
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
            int r = lm_bpe_table_find(&b->merge, key, (size_t)len[i] + 1 + len[i + 1]);
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
        int id = lm_bpe_table_find(&b->tok, str + off[i], (size_t)len[i]);
        if (id < 0) {   /* not in the vocabulary: one token per byte */
            for (int j = 0; j < len[i]; ) {
                int l = ((unsigned char)str[off[i] + j] >= 0xC0) ? 2 : 1;
                int bid = lm_bpe_table_find(&b->tok, str + off[i] + j, (size_t)l);
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

/* Encode the n bytes at s (no special token in them) under b's rules,
 * appending to ids[*count..cap); with ids NULL, append each piece's end
 * (a byte offset into s, plus base) to ends[*count..cap) instead. */
static int encode_segment(const lm_bpe *b, const unsigned char *s, size_t n, int *ids, int cap,
                          int *count, size_t *ends, size_t base)
{
    uint32_t *cp = malloc(sizeof(uint32_t) * (n + 1));   /* [n] code points */
    int *cl = malloc(sizeof(int) * (n + 1));             /* [n] their classes */
    size_t *at = malloc(sizeof(size_t) * (n + 1));       /* [n+1] byte offset of each */
    int status = KVR_OK, m = 0;
    if (!cp || !cl || !at) {
        status = lm_model_fail(KVR_ENOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; m++) {
        int len;
        at[m] = i;
        cp[m] = utf8_next(s + i, n - i, &len);
        cl[m] = cp[m] == 0xFFFFFFFFu ? 0 : uc_class(cp[m]);
        i += (size_t)len;
    }
    at[m] = n;
    for (int c0 = 0; c0 < m; ) {
        /* the chunk [c0, c1): smollm makes every number code point one */
        int c1 = c0 + 1;
        if (b->pre != LM_PRE_SMOLLM)
            c1 = m;
        else if (cl[c0] != UC_NUMBER)
            while (c1 < m && cl[c1] != UC_NUMBER) c1++;
        uc_chunk ch = {cp + c0, cl + c0, c1 - c0};
        for (int i = 0; i < ch.n; ) {
            int len = gpt2_match(&ch, i);
            size_t b0 = at[c0 + i], b1 = at[c0 + i + len];
            int got = -1;
            if (ids)
                got = encode_piece(b, s + b0, b1 - b0, ids + *count, cap - *count);
            else if (*count < cap)
                got = 1, ends[*count] = base + b1;
            if (got < 0) {
                status = lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap);
                goto done;
            }
            *count += got;
            i += len;
        }
        c0 = c1;
    }
done:
    free(cp); free(cl); free(at);
    return status;
}

/* lm_bpe_encode and lm_bpe_split: ids, or piece ends when ids is NULL */
static int encode(const lm_bpe *b, const char *text, int *ids, size_t *ends, int cap, int *n_out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    int count = 0;
    while (i < n) {
        /* a special token <|...|> written literally */
        if (s[i] == '<' && i + 1 < n && s[i + 1] == '|') {
            const char *end = strstr(text + i + 2, "|>");
            if (end) {
                int id = lm_bpe_table_find(&b->tok, text + i, (size_t)(end + 2 - (text + i)));
                if (id >= 0) {
                    if (count >= cap)
                        return lm_model_fail(KVR_EINVAL, "text needs more than %d tokens", cap);
                    if (ids) ids[count++] = id;
                    else ends[count++] = (size_t)(end + 2 - text);
                    i = (size_t)(end + 2 - text);
                    continue;
                }
            }
        }
        /* the text up to the next special token, pre-tokenized */
        size_t stop = i + 1;
        while (stop < n && !(s[stop] == '<' && stop + 1 < n && s[stop + 1] == '|'))
            stop++;
        int status = encode_segment(b, s + i, stop - i, ids, cap, &count, ends, i);
        if (status != KVR_OK)
            return status;
        i = stop;
    }
    *n_out = count;
    return KVR_OK;
}

int lm_bpe_encode(const lm_bpe *b, const char *text, int *ids, int cap, int *n_out)
{
    if (b->spm)
        return lm_spm_encode(b, text, ids, NULL, cap, n_out);
    return encode(b, text, ids, NULL, cap, n_out);
}

int lm_bpe_split(const lm_bpe *b, const char *text, size_t *ends, int cap, int *n_out)
{
    if (b->spm)
        return lm_spm_encode(b, text, NULL, ends, cap, n_out);
    return encode(b, text, NULL, ends, cap, n_out);
}

size_t lm_bpe_decode(const lm_bpe *b, const int *ids, int n, char *out, size_t cap)
{
    if (b->spm)
        return lm_spm_decode(b, ids, n, out, cap);
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
