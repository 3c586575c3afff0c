#!/bin/sh
# tests/llamacpp.sh: the runtime's tokenizer and forward pass beside
# llama.cpp (doc/model.md §8), on every GGUF model found: $KVR_TEST_GGUF
# (paths separated by spaces), else what scripts/fetch-smollm2.sh fetched
# (${KVR_MODELS:-$HOME/.cache/kvreviver}).  SKIP (77) where python3,
# NumPy, llama-cpp-python (scripts/install-llamacpp.sh) or a model is absent.
: "${top_srcdir:=.}" "${top_builddir:=.}"
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
if ! "$py" -c 'import numpy, llama_cpp, gguf' 2>/dev/null; then
  echo "SKIP: python3 lacks numpy, llama_cpp or gguf (scripts/install-llamacpp.sh installs them)"
  exit 77
fi
models=${KVR_TEST_GGUF:-}
if [ -z "$models" ]; then
  for f in "${KVR_MODELS:-$HOME/.cache/kvreviver}"/*.gguf; do
    [ -f "$f" ] && models="$models $f"
  done
fi
[ -n "$models" ] || { echo "SKIP: no GGUF model (set KVR_TEST_GGUF, or run scripts/fetch-smollm2.sh)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kvr-llamacpp.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
# the texts: the four licences of doc/results.md where the machine has them
# (the first text gives the ids of the logits check), and the sample
lic=/usr/share/common-licenses
if [ -f $lic/GPL-3 ] && [ -f $lic/Apache-2.0 ] && [ -f $lic/MPL-2.0 ] && [ -f $lic/GFDL-1.3 ]; then
  cat $lic/GPL-3 $lic/Apache-2.0 $lic/MPL-2.0 $lic/GFDL-1.3 >"$work/licences.txt"
else
  cat "$top_srcdir/tests/llamacpp-sample.txt" "$top_srcdir/tests/llamacpp-sample.txt" >"$work/licences.txt"
fi
rc=0
for m in $models; do
  echo "# $m"
  "$py" "$top_srcdir/tests/llamacpp-check.py" "$top_builddir/tests/lm-dump" "$m" "$work" \
    "$work/licences.txt" "$top_srcdir/tests/llamacpp-sample.txt" 2>"$work/err"
  s=$?
  [ $s -eq 0 ] || { grep -v '^llama_\|^$' "$work/err" | tail -20; }
  [ $s -eq 0 ] || [ $s -eq 77 ] && [ $rc -eq 0 ] && rc=$s
  [ $s -ne 0 ] && [ $s -ne 77 ] && rc=1
done
exit $rc
