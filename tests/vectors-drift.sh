#!/bin/sh
# vectors-drift.sh: regenerate the conformance vectors and compare them with
# the committed copy in tests/vectors/ (issue 5, test a).  A change to the
# spec's arithmetic, the scripted sequences or the tolerance model fails
# here until the copy is regenerated on purpose:
#     tool/kvreviver vectors --out tests/vectors
set -u
tool="$top_builddir/tool/kvreviver"
ref="$top_srcdir/tests/vectors"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-drift.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$tool" vectors --out "$tmp/new" || fail "kvreviver vectors exited $?"
# the expected outputs, through the validator (what a port is held to)
"$tool" validate --vectors "$ref" --port "$tmp/new/expected" >"$tmp/validate.out"
rc=$?
cat "$tmp/validate.out"
[ $rc -eq 0 ] || fail "regenerated outputs do not validate against tests/vectors (spec drift)"
# ... and byte for byte: inputs, tolerances, expected outputs
for d in inputs tolerance expected; do
    diff -r "$ref/$d" "$tmp/new/$d" || fail "tests/vectors/$d differs from a fresh generation"
done
# the manifest, apart from the version that wrote it
grep -v '^version ' "$ref/MANIFEST" >"$tmp/a"
grep -v '^version ' "$tmp/new/MANIFEST" >"$tmp/b"
diff "$tmp/a" "$tmp/b" || fail "tests/vectors/MANIFEST differs from a fresh generation"
echo "PASS: fresh vectors equal the committed copy"
