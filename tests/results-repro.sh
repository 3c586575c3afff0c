#!/bin/sh
# tests/results-repro.sh: the cheap tables of doc/results.md (stories260K,
# synthetic and needle at 2k, f16 bytes) rerun and compared cell by cell
# with the doc (tests/results-repro.py).  `make check-results-smollm2`
# adds the SmolLM2 tables (KVR_SMOLLM2=MODEL.gguf): the passkey at 1k and
# 2k and, where /usr/share/common-licenses has the four licences, the
# licence text at 2k and 4k (hours on 2 cores); `make check-results-gemma3`
# the Gemma 3 tables (KVR_GEMMA3=MODEL.gguf).  SKIP (77)
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
[ -n "${KVR_GEMMA3:-}" ] && set -- "$@" --gemma3 "$KVR_GEMMA3"
if [ -n "${KVR_SMOLLM2:-}" ] || [ -n "${KVR_GEMMA3:-}" ]; then
    [ -n "${KVR_SMOLLM2:-}" ] && set -- "$@" --smollm2 "$KVR_SMOLLM2"
    lic=/usr/share/common-licenses
    if [ -r $lic/GPL-3 ] && [ -r $lic/Apache-2.0 ] && [ -r $lic/MPL-2.0 ] && [ -r $lic/GFDL-1.3 ]; then
        joined=$(mktemp "${TMPDIR:-/tmp}/licences.XXXXXX") || exit 99
        trap 'rm -f "$joined"' EXIT
        cat $lic/GPL-3 $lic/Apache-2.0 $lic/MPL-2.0 $lic/GFDL-1.3 > "$joined" || exit 99
        set -- "$@" --licences "$joined"
    fi
fi
"$py" "$top_srcdir/tests/results-repro.py" "$@"
exit $?
