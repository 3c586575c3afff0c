#!/bin/sh
# tests/floors.sh: the library's layers call one way (base/README):
#   lib/  (public API, files, planner front, CUDA dispatch)
#    v
#   ref/  (the literate reference: the spec's operations)
#    v
#   base/ (the spec's primitives: errors, storage types, hash, allocation)
# Every layer may include the public header kvreviver.h (the types all of
# them share).  Beyond that, a base/ file includes only base/ headers and a
# ref/ file only ref/ and base/ headers; and, read from the built objects
# with nm, no base/ object calls a function defined in ref/ or lib/, no ref/
# object one defined in lib/.  Inside ref/, no two files call each other
# (attend.c over importance.c over dot.c), but for head.c and tier.c: the
# tier is a step of the head cache's lifecycle (spec 19.3), the one pair
# that is read as one unit.  A failure names the file and the include or
# the symbol.
set -u
src=${top_srcdir:-.}
build=${top_builddir:-.}
nm=${NM:-nm}
fail=0
allowed_pairs=" head:tier "

# includes: "X" of each file, against the headers its layer may use
check_includes() {
  layer=$1; shift
  for f in "$src/$layer"/*.c "$src/$layer"/*.h; do
    [ -f "$f" ] || continue
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
      h=$(echo "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
      ok=0
      for a in "$@"; do [ "$h" = "$a" ] && ok=1; done
      [ $ok -eq 1 ] || echo "FAIL: $layer/${f##*/} includes \"$h\", above its layer: $line"
    done
  done
}
out=$( { check_includes base base.h kvreviver.h
         check_includes ref base.h ref.h kvreviver.h; } )
[ -n "$out" ] && { echo "$out"; fail=1; }

command -v "$nm" >/dev/null 2>&1 || { echo "SKIP: no $nm to read the objects"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-floors.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
# one object per source: base/libkvreviver_la-hash.o -> base hash
: >"$tmp/defs"; : >"$tmp/uses"; : >"$tmp/objects"
for layer in base ref lib; do
  n=0
  for o in "$build/$layer"/*.o "$build/$layer"/.libs/*.o; do
    [ -f "$o" ] || continue
    name=$(basename "$o" .o | sed 's/^libkvreviver_la-//')
    [ -f "$src/$layer/$name.c" ] || continue         # a stale object of a moved source
    grep -qx "$layer $name" "$tmp/objects" && continue
    n=$((n + 1))
    "$nm" --defined-only "$o" | awk -v l=$layer -v f=$name '$2 ~ /^[TDBRC]$/ {print l, f, $3}' >>"$tmp/defs"
    "$nm" -u "$o" | awk -v l=$layer -v f=$name '{print l, f, $NF}' >>"$tmp/uses"
    echo "$layer $name" >>"$tmp/objects"
  done
  [ $n -gt 0 ] || { echo "FAIL: no objects of $layer/ under $build (build the library first)"; exit 1; }
done
# each use resolved to the layer and file that define it
awk 'NR == FNR { def[$3] = $1 " " $2; next }
     ($3 in def) { split(def[$3], d, " "); print $1, $2, d[1], d[2], $3 }' \
    "$tmp/defs" "$tmp/uses" >"$tmp/edges"
rank() { case $1 in base) echo 0 ;; ref) echo 1 ;; *) echo 2 ;; esac; }
while read -r l f dl df sym; do
  [ "$(rank "$dl")" -gt "$(rank "$l")" ] && { echo "FAIL: $l/$f.c calls $sym, defined above it in $dl/$df.c"; fail=1; }
done <"$tmp/edges"
# two ref/ files that call each other
awk '$1 == "ref" && $3 == "ref" && $2 != $4 { print $2, $4 }' "$tmp/edges" | sort -u >"$tmp/ref"
while read -r a b; do
  grep -qx "$b $a" "$tmp/ref" || continue
  [ "$a" \< "$b" ] || continue
  case $allowed_pairs in *" $a:$b "*) continue ;; esac
  echo "FAIL: ref/$a.c and ref/$b.c call each other:" \
       "$(awk -v a=$a -v b=$b '$1 == "ref" && (($2 == a && $4 == b) || ($2 == b && $4 == a)) { printf "%s/%s -> %s; ", $2, $4, $5 }' "$tmp/edges")"
  fail=1
done <"$tmp/ref"
# non-vacuous: the objects were read and the layers do call downwards
for want in "ref base" "lib ref" "lib base"; do
  awk -v a="${want% *}" -v b="${want#* }" '$1 == a && $3 == b { found = 1 } END { exit !found }' "$tmp/edges" \
    || { echo "FAIL: no call from ${want% *}/ into ${want#* }/ was seen: the check reads nothing"; fail=1; }
done
[ -f "$src/base/README" ] || { echo "FAIL: base/ has no README"; fail=1; }
echo "$(wc -l <"$tmp/edges") calls between files read from $(wc -l <"$tmp/objects") objects"
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
