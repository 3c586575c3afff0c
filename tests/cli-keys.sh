#!/bin/sh
# cli-keys.sh: `kvreviver keys` on stories260K (doc/model.md §7): one CSV
# row per layer and one for all layers; on every row the 4-bit error is
# below the 2-bit error (per token and per channel, keys and values), every
# error is in [0, 1), every max/median range is at least 1 and every top-4
# share in (0, 1]; the CSV on standard output is the file's; the same seed
# gives the same rows and another seed other ones (the sampled text is
# used).  The statistics themselves are checked on known vectors in
# tests/keystats.c.  Skipped (77) without the model.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
kvr=$top_builddir/tool/kvreviver
model=${KVR_TEST_MODEL:-$top_srcdir/../shared/models/stories260K.bin}
if [ ! -r "$model" ]; then
  echo "SKIP: $model is absent (set KVR_TEST_MODEL)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-keys.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }

if "$kvr" keys --workload "model:$model" --context 512 --csv "$tmp/k.csv" >"$tmp/table" 2>"$tmp/err"; then
  ok "keys on stories260K at 512 (exit 0)"
else
  fail "keys on stories260K: exit $?"; sed 's/^/# /' "$tmp/err"
fi
layers=$(sed -n 's/^model [^:]*: \([0-9]*\) layers.*/\1/p' "$tmp/table")
[ -n "$layers" ] && [ "$(grep -c . "$tmp/k.csv")" -eq $((layers + 2)) ] \
  && ok "a header, $layers layer rows and the pooled row" || fail "rows: $(cat "$tmp/k.csv")"
grep -q '^all ' "$tmp/table" && ok "the table has the pooled line" || fail "no pooled line in the table"

# every row's properties, by column name
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{
  bad = ""
  split("k v", kv, " ")
  for (w = 1; w <= 2; w++) {
    p = kv[w]
    if ($col[p "_range"] < 1) bad = bad " " p "_range<1"
    if (!($col[p "_top4"] > 0 && $col[p "_top4"] <= 1)) bad = bad " " p "_top4"
    split("tok chan", route, " ")
    for (r = 1; r <= 2; r++) {
      e4 = $col[p "_" route[r] "_q4"]; e2 = $col[p "_" route[r] "_q2"]
      if (!(e4 >= 0 && e4 < 1 && e2 >= 0 && e2 < 1)) bad = bad " " p "_" route[r] " not in [0,1)"
      if (!(e4 < e2)) bad = bad " " p "_" route[r] "_q4>=q2"
    }
  }
  if (bad != "") { print "layer " $col["layer"] ":" bad; failed = 1 }
  rows++
}
END { exit failed || rows == 0 }' "$tmp/k.csv" >"$tmp/awk" 2>&1 \
  && ok "every row: 4 bits below 2 bits, errors in [0, 1), ranges >= 1, shares in (0, 1]" \
  || { fail "row properties"; sed 's/^/# /' "$tmp/awk"; }

"$kvr" keys --workload "model:$model" --context 512 --csv - >"$tmp/out" 2>/dev/null
cmp -s "$tmp/out" "$tmp/k.csv" && ok "--csv - writes the same CSV and no table" || fail "--csv - differs"
"$kvr" keys --workload "model:$model" --context 512 --seed 2 --csv "$tmp/s2.csv" >/dev/null 2>&1
[ -s "$tmp/s2.csv" ] && ! cmp -s "$tmp/s2.csv" "$tmp/k.csv" && ok "--seed 2 samples other text" \
  || fail "--seed 2 gave the same rows"

echo "1..$n"
[ $fails -eq 0 ]
