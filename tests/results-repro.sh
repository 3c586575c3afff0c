#!/bin/sh
# tests/results-repro.sh: the cheap tables of doc/results.md (stories260K,
# synthetic and needle at 2k, f16 bytes) rerun and compared cell by cell
# with the doc (tests/results-repro.py).  `make check-results-smollm2`
# adds the SmolLM2 passkey table (KVR_SMOLLM2=MODEL.gguf).  SKIP (77)
# without python3.
: "${top_srcdir:=.}" "${top_builddir:=.}"
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
model=${KVR_TEST_MODEL:-$top_srcdir/../shared/models/stories260K.bin}
set -- "$top_builddir/tool/kvreviver" "$top_srcdir/doc/results.md"
[ -r "$model" ] && set -- "$@" --model "$model"
[ -n "${KVR_SMOLLM2:-}" ] && set -- "$@" --smollm2 "$KVR_SMOLLM2"
exec "$py" "$top_srcdir/tests/results-repro.py" "$@"
