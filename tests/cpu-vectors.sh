#!/bin/sh
# cpu-vectors.sh: the conformance vectors' scenarios run on the cpu backend
# (kvreviver vectors --backend cpu) validate against the committed
# reference vectors (tests/vectors): every integer and decision bit for bit,
# every float within the tolerance of spec 14 (issue 25).
set -u
tool="$top_builddir/tool/kvreviver"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-cpuvec.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
"$tool" vectors --backend cpu --out "$tmp/cpu" >/dev/null || { echo "FAIL: kvreviver vectors --backend cpu exited $?"; exit 1; }
"$tool" validate --vectors "$top_srcdir/tests/vectors" --port "$tmp/cpu/expected" >"$tmp/out"
rc=$?
grep -E 'attend|^level|^validate' "$tmp/out"
[ $rc -eq 0 ] || { cat "$tmp/out"; echo "FAIL: the cpu backend's outputs do not validate"; exit 1; }
echo "PASS: the cpu backend validates against the reference's conformance vectors"
