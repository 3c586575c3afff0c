#!/bin/sh
# vectors-manifest.sh: validate checks a vectors directory against its
# MANIFEST (each file's size and FNV-1a 64 digest) before comparing anything,
# and an empty port directory is one message (issue 29, item 2).
set -u
tool="$top_builddir/tool/kvreviver"
vec="$top_srcdir/tests/vectors"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-manifest.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; sed 's/^/  | /' "$tmp/err" "$tmp/out" 2>/dev/null | head -20; fails=$((fails + 1)); }

# a private copy of the vectors
copy() { chmod -R u+w "$tmp/v" 2>/dev/null; rm -rf "$tmp/v"; cp -R "$vec" "$tmp/v" && chmod -R u+w "$tmp/v" || exit 99; }
# refused WHAT TEXT: validate the copy against the committed expected outputs;
# it must exit 1 with TEXT on stderr and no PASS or FAIL line (nothing compared)
refused() {
  "$tool" validate --vectors "$tmp/v" --port "$vec/expected" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ $rc -ne 1 ]; then fail "$1: exit $rc, expected 1"
  elif ! grep -qF -- "$2" "$tmp/err"; then fail "$1: stderr lacks '$2'"
  elif [ "$(wc -l <"$tmp/err")" -ne 1 ]; then fail "$1: more than one message"
  elif grep -q '^\(PASS\|FAIL\) ' "$tmp/out"; then fail "$1: arrays were compared"
  else ok "$1 refused: $(cat "$tmp/err")"; fi
}

grep -q '^format 2$' "$vec/MANIFEST" && ok "the committed MANIFEST is format 2" || fail "MANIFEST format"
n_arrays=$(grep -c '^array ' "$vec/MANIFEST")
n_files=$(grep -c '^file ' "$vec/MANIFEST")
[ "$n_arrays" -gt 0 ] && [ "$n_arrays" -eq "$n_files" ] && ok "$n_files file lines for $n_arrays arrays" \
  || fail "$n_files file lines for $n_arrays arrays"

# the control: an intact copy validates
copy
"$tool" validate --vectors "$tmp/v" --port "$vec/expected" >"$tmp/out" 2>"$tmp/err" \
  && ok "an intact copy validates" || fail "an intact copy does not validate"

copy; f=inputs/hash/grid.npy
size=$(wc -c <"$tmp/v/$f")
head -c $((size - 16)) "$vec/$f" >"$tmp/v/$f"
refused "a truncated $f" "$f is $((size - 16)) bytes, the manifest says $size (truncated)"

copy; f=expected/bf16_gqa4/attend.npy
# one byte of the data changed, the size kept (the last byte: data, not header)
size=$(wc -c <"$tmp/v/$f")
{ head -c $((size - 1)) "$vec/$f"; printf 'Z'; } >"$tmp/v/$f"
cmp -s "$vec/$f" "$tmp/v/$f" && { printf 'Y' | dd of="$tmp/v/$f" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null; }
refused "a changed $f" "$f has FNV-1a digest"

copy; f=tolerance/bf16_gqa4/attend.npy
rm -f "$tmp/v/$f"
refused "a missing $f" "$f cannot be read"

copy
grep -v '^file expected/hash/hash.npy ' "$vec/MANIFEST" >"$tmp/v/MANIFEST"
refused "an array without its file line" "expected/hash/hash.npy has no file line"

copy
sed 's/^format 2$/format 1/' "$vec/MANIFEST" >"$tmp/v/MANIFEST"
refused "a format 1 manifest" "format 1, this validator reads format 2"

# an empty port directory: one message, not a FAIL line per array
mkdir "$tmp/empty"
"$tool" validate --vectors "$vec" --port "$tmp/empty" >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'holds none of the' "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ] \
   && ! grep -q '^FAIL ' "$tmp/out"; then ok "an empty port: $(cat "$tmp/err")"
else fail "an empty port: exit $rc"; fi

[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "PASS: vectors-manifest"
