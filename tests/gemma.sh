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
