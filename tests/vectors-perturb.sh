#!/bin/sh
# vectors-perturb.sh: the validator on broken and harmlessly perturbed ports
# (issue 5, tests b and c), and its exit codes.
set -u
tool="$top_builddir/tool/kvreviver"
perturb="$top_builddir/tests/vectors-perturb"
vec="$top_srcdir/tests/vectors"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-perturb.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; exit 1; }
n_arrays=$(grep -c '^array expected/' "$vec/MANIFEST")

# a fresh port directory: a copy of the expected outputs
fresh() {
    chmod -R u+w "$tmp/port" 2>/dev/null; rm -rf "$tmp/port"
    cp -R "$vec/expected" "$tmp/port" && chmod -R u+w "$tmp/port"
}
# validate, keeping the output; prints nothing, returns the exit code
validate() {
    "$tool" validate --vectors "$vec" --port "$tmp/port" >"$tmp/out" 2>&1
}
arr=bf16_gqa4/attend.npy

# the vectors against themselves pass
fresh
validate || fail "the vectors do not validate against themselves"
grep -q "^validate: $n_arrays passed, 0 failed$" "$tmp/out" || fail "summary line"

# (c) within tolerance: half the tolerance of the loosest element passes
fresh
"$perturb" "$vec/expected/$arr" "$vec/tolerance/$arr" 0.5 "$tmp/port/$arr" >/dev/null || fail "perturb"
cmp -s "$vec/expected/$arr" "$tmp/port/$arr" && fail "the perturbation changed nothing"
validate || fail "a perturbation within tolerance failed validation"
grep -q "^PASS $arr" "$tmp/out" || fail "no PASS line for $arr"

# (b) beyond tolerance: 4 times the tolerance fails, naming the array
fresh
"$perturb" "$vec/expected/$arr" "$vec/tolerance/$arr" 4 "$tmp/port/$arr" >/dev/null || fail "perturb"
validate && fail "a perturbation beyond tolerance passed"
[ $? -eq 1 ] || fail "exit code not 1"
grep -q "^FAIL $arr: 1 of [0-9]* elements differ; worst deviation .* at \[.*\] (port .*, expected .*), 400.0% of tolerance" "$tmp/out" \
    || fail "no FAIL line naming $arr with index, values and tolerance"
[ "$(grep -c '^FAIL' "$tmp/out")" -eq 1 ] || fail "more than one array failed"
# the per-level summary: the failure in level 7 (attention), the other levels clean
grep -q "^level 7 attend (spec 11, 17): [0-9]* passed, 1 failed" "$tmp/out" || fail "no level 7 summary with the failure"
grep -q "^level 4 parts (spec 3, 6, 10): [0-9]* passed, 0 failed$" "$tmp/out" || fail "no clean level 4 summary"
[ "$(grep -c '^level [1-7] .*: [0-9]* passed, [0-9]* failed' "$tmp/out")" -eq 7 ] || fail "not 7 level summaries"
grep -q "^validate: $((n_arrays - 1)) passed, 1 failed$" "$tmp/out" || fail "summary line"

# an exact (integer) array off by one fails
fresh
"$perturb" "$vec/expected/prefill_ties/parts.npy" - 1 "$tmp/port/prefill_ties/parts.npy" >/dev/null || fail "perturb"
validate && fail "a changed partition passed"
grep -q "^FAIL prefill_ties/parts.npy: 1 of .* at \[0,0,0\] (port 1, expected 0), must be exact" "$tmp/out" \
    || fail "no FAIL line for the partition"

# a missing, a misshapen and a wrong-dtype array fail, naming the file
fresh
rm "$tmp/port/hash/sign.npy"
cp "$vec/expected/hash/hash.npy" "$tmp/port/planner/bytes.npy"            # u8 of another shape
cp "$vec/expected/one_token/parts.npy" "$tmp/port/tova_ties/parts.npy"     # i4 of another shape
cp "$vec/expected/hash/hash.npy" "$tmp/port/hash/bucket.npy"               # u8, not i4
validate && fail "missing and misshapen arrays passed"
grep -q "^FAIL hash/sign.npy: .*hash/sign.npy.*cannot open" "$tmp/out" || fail "missing array not named"
n_plan=$(sed -n 's|^array expected/planner/bytes.npy <u8 \([0-9]*\) .*|\1|p' "$vec/MANIFEST")
grep -q "^FAIL planner/bytes.npy: .* has shape 504, expected $n_plan" "$tmp/out" || fail "misshapen array not named"
grep -q "^FAIL tova_ties/parts.npy: .* has shape 2x1x1, expected 51x1x29" "$tmp/out" || fail "misshapen array not named"
grep -q "^FAIL hash/bucket.npy: .* has dtype <u8, expected <i4" "$tmp/out" || fail "wrong dtype not named"
grep -q "^validate: $((n_arrays - 4)) passed, 4 failed$" "$tmp/out" || fail "summary line"

# a truncated array fails
fresh
head -c 100 "$vec/expected/long_2k/attend.npy" >"$tmp/port/long_2k/attend.npy"
validate && fail "a truncated array passed"
grep -q "^FAIL long_2k/attend.npy: .*truncated" "$tmp/out" || fail "truncated array not named"

# exit codes: usage 2, unreadable directories 1
"$tool" validate --vectors "$vec" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --port: not exit 2"
"$tool" validate --bogus x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option: not exit 2"
"$tool" vectors >/dev/null 2>&1; [ $? -eq 2 ] || fail "vectors without --out: not exit 2"
"$tool" validate --vectors "$tmp/nowhere" --port "$tmp/port" >/dev/null 2>&1; [ $? -eq 1 ] || fail "unreadable vectors: not exit 1"
"$tool" validate --vectors "$vec" --port "$tmp/nowhere" >/dev/null 2>&1; [ $? -eq 1 ] || fail "unreadable port: not exit 1"
echo "PASS: validate accepts within tolerance, rejects and names broken arrays"
