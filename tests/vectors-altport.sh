#!/bin/sh
# vectors-altport.sh: an independent float64 implementation of levels 5-7
# (tests/vectors-altport.c) must validate against the vectors: the tolerance
# model (spec §14) is not tighter than the arithmetic it bounds.  Its outputs
# must differ from the reference's somewhere, or the check would be vacuous.
set -u
tool="$top_builddir/tool/kvreviver"
alt="$top_builddir/tests/vectors-altport"
vec="$top_srcdir/tests/vectors"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-altport.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; exit 1; }

cp -R "$vec/expected" "$tmp/port" && chmod -R u+w "$tmp/port" || exit 99
"$alt" "$vec" "$tmp/port" || fail "vectors-altport exited $?"
"$tool" validate --vectors "$vec" --port "$tmp/port" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
[ $rc -eq 0 ] || fail "a float64 implementation does not validate: the tolerances are too tight"
# non-vacuous: some float arrays differ from the reference's, using a share of their tolerance
differ=0
for f in "$vec"/expected/*/attend.npy "$vec"/expected/*/reconstruct.npy "$vec"/expected/*/sketch_sums.npy; do
    rel=${f#"$vec/expected/"}
    cmp -s "$f" "$tmp/port/$rel" || differ=$((differ + 1))
done
echo "float arrays that differ from the reference: $differ"
[ $differ -ge 10 ] || fail "the float64 outputs equal the reference's: the check is vacuous"
grep -q "^PASS .*attend.npy.* [1-9][0-9.]*% of tolerance" "$tmp/out" \
    || grep -q "^PASS .*attend.npy.* 0\.[1-9][0-9]*% of tolerance" "$tmp/out" \
    || fail "no attention output uses a visible share of its tolerance"
echo "PASS: a float64 implementation validates"
