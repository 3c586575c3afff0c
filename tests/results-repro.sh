#!/bin/sh
# tests/results-repro.sh: the cheap tables of doc/results.md (stories260K,
# synthetic and needle at 2k, f16 bytes) rerun and compared cell by cell
# with the doc (tests/results-repro.py).  `make check-results-smollm2`
# adds the SmolLM2 passkey table (KVR_SMOLLM2=MODEL.gguf).  SKIP (77)
# without python3.  OPENBLAS_CORETYPE is set to Haswell (see below).
: "${top_srcdir:=.}" "${top_builddir:=.}"
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
model=${KVR_TEST_MODEL:-$top_srcdir/../shared/models/stories260K.bin}
set -- "$top_builddir/tool/kvreviver" "$top_srcdir/doc/results.md"
# The model rows depend on OpenBLAS's kernels (doc/results.md): pin the
# AVX2 ones the doc was made with, or leave the model table out.
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; then
    OPENBLAS_CORETYPE=Haswell
    export OPENBLAS_CORETYPE
    [ -r "$model" ] && set -- "$@" --model "$model"
else
    echo "results-repro: no AVX2 and FMA here: the model table is left out (its OpenBLAS kernels differ)"
fi
[ -n "${KVR_SMOLLM2:-}" ] && set -- "$@" --smollm2 "$KVR_SMOLLM2"
exec "$py" "$top_srcdir/tests/results-repro.py" "$@"
