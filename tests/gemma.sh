#!/bin/sh
# tests/gemma.sh: Gemma 3 270M through the runtime (doc/model.md §9): the
# file loads, the SentencePiece tokenizer gives the ids llama.cpp gives on
# a short prompt (recorded below from llama-cpp-python 0.3.36), and greedy
# decoding after BOS and "The capital of France is" gives llama.cpp's " the"
# (a step through the prompt path and decode steps with the window cache).
# SKIP (77) where the file (scripts/fetch-gemma3.sh) or python3 is absent.
: "${top_srcdir:=.}" "${top_builddir:=.}"
py=${PYTHON3:-python3}
model=${KVR_GEMMA3:-${KVR_MODELS:-$HOME/.cache/kvreviver}/gemma-3-270m-q4_k_m.gguf}
[ -f "$model" ] || { echo "SKIP: no $model (scripts/fetch-gemma3.sh fetches it)"; exit 77; }
command -v "$py" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kvr-gemma.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
dump=$top_builddir/tests/lm-dump
printf 'The capital of France is' >"$work/prompt.txt"
"$dump" tokens "$model" "$work/prompt.txt" >"$work/ids" || { echo "FAIL: lm-dump tokens"; exit 1; }
got=$(tr '\n' ' ' <"$work/ids")
want="818 5279 529 7001 563 "
[ "$got" = "$want" ] || { echo "FAIL: ids of the prompt: got '$got', llama.cpp gives '$want'"; exit 1; }
echo "ok ids: $got"
{ echo 2; cat "$work/ids"; } >"$work/bos-ids"
"$dump" logits "$model" "$work/bos-ids" "$work/logits" 3 || { echo "FAIL: lm-dump logits"; exit 1; }
"$py" - "$work/logits" <<'PY' || exit 1
import array, math, sys
z = array.array("f")
with open(sys.argv[1], "rb") as f:
    z.frombytes(f.read())
V = 262144
rows = [z[i * V:(i + 1) * V] for i in range(len(z) // V)]
last = rows[-1]
top = max(range(V), key=last.__getitem__)
ok = all(math.isfinite(x) for r in rows for x in r) and top == 506   # " the", as llama.cpp
print("%s %d rows of logits, finite; greedy next token %d (llama.cpp: 506, \" the\")" % ("ok" if ok else "FAIL", len(rows), top))
sys.exit(0 if ok else 1)
PY
# --text on a model that adds BOS (doc/model.md §4.4): window w is BOS and
# the document's tokens w(c-1) .. w(c-1)+c-1 (the last one only a target).
# The full cache's ppl from `eval --text` equals the ppl recomputed here
# from lm-dump's logits of those ids: the same prompt path, but eval's
# decode steps multiply with sgemm (its caches step together) where
# lm-dump's use sgemv, so the float32 sums differ in order.  A logit then
# differs by at most §8's bound tol = 4 u sqrt(7 n L) max|z| (u = 2^-24,
# n = 2048 the feed-forward width, L = 18 layers), each token's nll by
# 2 tol (the log-softmax is float64 in both), and the ppl relatively by
# about as much: |a - b| <= 2 tol b.  Measured 4e-7 against about 7e-3;
# a window shifted by one token is far outside it (955 against 566 on
# the NEWS of 2026-12-07).
text=$top_srcdir/NEWS
"$dump" tokens "$model" "$text" >"$work/doc-ids" || { echo "FAIL: lm-dump tokens of NEWS"; exit 1; }
c=48 d=8
"$top_builddir/tool/kvreviver" eval --workload "model:$model" --context $c --decode $d --text "$text" --windows 2 \
  --budget 0.5 --method full --threads 1 --csv "$work/text.csv" >"$work/text.out" 2>"$work/text.err" \
  || { echo "FAIL: eval --text on Gemma: $(tail -3 "$work/text.err")"; exit 1; }
grep -q "each window is BOS" "$work/text.out" || { echo "FAIL: eval --text does not say the windows start with BOS"; exit 1; }
for w in 0 1; do
  "$py" - "$work/doc-ids" $w $c >"$work/win$w" <<'PY'
import sys
ids = [int(x) for x in open(sys.argv[1]).read().split()]
w, c = int(sys.argv[2]), int(sys.argv[3])
win = [2] + ids[w * (c - 1): w * (c - 1) + c]
print("\n".join(map(str, win)))
PY
  head -n $c "$work/win$w" >"$work/win$w.ids"
  "$dump" logits "$model" "$work/win$w.ids" "$work/win$w.logits" $((c - d)) || { echo "FAIL: lm-dump logits of window $w"; exit 1; }
done
"$py" - "$work" $c $d <<'PY' || exit 1
import array, csv, math, sys
work, c, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
V, nll, n, zmax = 262144, 0.0, 0, 0.0
for w in (0, 1):
    win = [int(x) for x in open("%s/win%d" % (work, w)).read().split()]
    z = array.array("f")
    with open("%s/win%d.logits" % (work, w), "rb") as f:
        z.frombytes(f.read())
    for r in range(1, d + 1):               # rows after positions c-d .. c-1; row 0 is the prompt's
        row = z[r * V:(r + 1) * V]
        m = max(row)
        zmax = max(zmax, m, -min(row))
        lse = m + math.log(math.fsum(math.exp(x - m) for x in row))
        nll += lse - row[win[c - d + r]]
        n += 1
want = math.exp(nll / n)
got = float(next(csv.DictReader(open(work + "/text.csv")))["ppl"])
tol = 4 * 2.0 ** -24 * math.sqrt(7 * 2048 * 18) * zmax
ok = abs(got - want) <= 2 * tol * want
print("%s eval --text full ppl %.6f, recomputed from BOS-first windows %.6f (relative tolerance %.2g)"
      % ("ok" if ok else "FAIL", got, want, 2 * tol))
sys.exit(0 if ok else 1)
PY
# The passkey prompt in Gemma's turn template (doc/model.md §4.3): BOS,
# <start_of_turn>user ... <end_of_turn> <start_of_turn>model "The pass key
# is"; at 200 positions the full cache reads back trial 0's key (greedy,
# recorded 2026-12-07), which fails when BOS or the turn tokens are wrong.
"$top_builddir/tool/kvreviver" eval --workload "model:$model" --context 200 --passkey 4 --forced 0 --method full \
  --threads 1 >"$work/pk.out" 2>"$work/pk.err" || { echo "FAIL: eval --passkey on Gemma: $(tail -3 "$work/pk.err")"; exit 1; }
grep -q 'passkey trial 0: key 82430, 171 prompt tokens, full answers " 82430' "$work/pk.err" \
  || { echo "FAIL: Gemma passkey trial 0: $(grep 'trial 0:' "$work/pk.err")"; exit 1; }
echo "ok passkey in Gemma's template: trial 0 answered, 171 prompt tokens"
