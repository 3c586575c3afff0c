#!/bin/sh
# vectors-mutants.sh: the conformance vectors catch wrong readings of the
# spec (issue 16).  For every mutant of tests/vectors-mutants.tab (one wrong
# reading: a source file of the library, the reference or its primitives with one sed script
# applied), build the vectors generator with that file mutated, let it write
# its outputs in the port layout, and require `kvreviver validate` against
# the committed vectors to fail, naming the arrays the table lists (or, for a
# harmless variant marked '-', to pass).  Controls: the unmutated build must
# pass, every mutation must change its file (a pattern that no longer
# matches fails the suite, it never passes silently), and no mutant may
# change the inputs (the vectors' inputs do not depend on the library; the
# probe positions, which are the vague positions at the end, excepted).
#
# The programs are compiled here, from a copy of the sources, with
# "$CC -O0 -ffp-contract=off" and not the configured CFLAGS (so sanitizer
# builds run it too, without sanitizers in the mutants), the CUDA backend
# left out: everything the vectors need is the reference.  Only the build
# directory's config.h and a temporary directory are used (VPATH and a
# read-only source tree work).  MUTANTS='name1 name2' runs only those.
set -u
tool="$top_builddir/tool/kvreviver"
vec="$top_srcdir/tests/vectors"
tab="$top_srcdir/tests/vectors-mutants.tab"
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-mutants.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
bad=0
fail() { echo "FAIL: $*"; bad=$((bad + 1)); }

command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc)"; exit 77; }
[ -f "$top_builddir/config.h" ] || { echo "SKIP: no config.h in $top_builddir"; exit 77; }

# a private copy of the sources the generator needs, and a config.h without CUDA
src="$tmp/src"
mkdir -p "$src/base" "$src/lib" "$src/ref" "$src/cpu" "$src/tool/conformance" "$src/tool/common" "$tmp/obj" || exit 99
cp "$top_srcdir"/base/*.c "$top_srcdir"/base/*.h "$src/base/" &&
cp "$top_srcdir"/lib/*.c "$top_srcdir"/lib/*.h "$src/lib/" &&
cp "$top_srcdir"/ref/*.c "$top_srcdir"/ref/*.h "$src/ref/" &&
cp "$top_srcdir"/cpu/*.c "$top_srcdir"/cpu/*.h "$src/cpu/" &&
cp "$top_srcdir"/tool/conformance/vectors.h "$top_srcdir"/tool/conformance/vectors_*.c "$src/tool/conformance/" &&
cp "$top_srcdir"/tool/common/*.c "$top_srcdir"/tool/common/*.h "$src/tool/common/" &&
cp "$top_srcdir/tests/vectors-mutants-gen.c" "$src/" || exit 99
rm -f "$src/lib/cuda_backend.c"
chmod -R u+w "$src"
printf '#include "%s/config.h"\n#undef KVR_HAVE_CUDA\n' "$top_builddir" >"$tmp/config.h"
sources=$(cd "$src" && ls base/*.c lib/*.c ref/*.c cpu/*.c tool/conformance/vectors_*.c tool/common/*.c vectors-mutants-gen.c)
obj() { echo "$tmp/obj/$(echo "$1" | tr / _).o"; }
compile() {  # compile SRC-relative file $1 into object $2
    "$cc" -O0 -ffp-contract=off -DHAVE_CONFIG_H -I"$tmp" -I"$src/base" -I"$src/lib" -I"$src/ref" -I"$src/tool" \
        -c "$src/$1" -o "$2"
}
# link with every object, $1 replacing the object of file $2 (if any); into $3
link() {
    objs=""
    for f in $sources; do
        if [ "$f" = "${2:-}" ]; then objs="$objs $1"; else objs="$objs $(obj "$f")"; fi
    done
    "$cc" -o "$3" $objs -lm -lpthread
}
# run generator $1 into $2, validate; output in $2.out, returns validate's status
run_validate() {
    "$1" "$2" >"$2.gen" 2>&1 || { echo "generator exited $?:"; cat "$2.gen"; return 99; }
    "$tool" validate --vectors "$vec" --port "$2/expected" >"$2.out" 2>&1
}

for f in $sources; do
    compile "$f" "$(obj "$f")" || { echo "FAIL: cannot compile $f"; exit 99; }
done
link "" "" "$tmp/gen" || { echo "FAIL: cannot link the generator"; exit 99; }

# control: the unmutated generator passes and writes the committed inputs
run_validate "$tmp/gen" "$tmp/control"
rc=$?
[ $rc -eq 0 ] || { cat "$tmp/control.out"; echo "FAIL: the unmutated build does not validate (exit $rc)"; exit 1; }
diff -r "$vec/inputs" "$tmp/control/inputs" >/dev/null || { echo "FAIL: the unmutated build writes other inputs"; exit 1; }
echo "PASS control: the unmutated build validates"

n=0
while read -r name file arrays script; do
    case $name in ''|'#'*) continue ;; esac
    if [ -n "${MUTANTS:-}" ]; then
        case " $MUTANTS " in *" $name "*) ;; *) continue ;; esac
    fi
    n=$((n + 1))
    [ -f "$src/$file" ] || { fail "$name: no file $file"; continue; }
    cp "$src/$file" "$tmp/orig" || exit 99
    sed -e "$script" "$tmp/orig" >"$src/$file" || { cp "$tmp/orig" "$src/$file"; fail "$name: sed failed"; continue; }
    if cmp -s "$tmp/orig" "$src/$file"; then
        cp "$tmp/orig" "$src/$file"
        fail "$name: the mutation no longer matches $file (re-anchor its pattern in $tab)"
        continue
    fi
    ok=1
    compile "$file" "$tmp/mutant.o" >"$tmp/cc.out" 2>&1 || { cat "$tmp/cc.out"; fail "$name: does not compile"; ok=0; }
    cp "$tmp/orig" "$src/$file"
    [ $ok -eq 1 ] || continue
    link "$tmp/mutant.o" "$file" "$tmp/mutant" || { fail "$name: does not link"; continue; }
    rm -rf "$tmp/m"
    run_validate "$tmp/mutant" "$tmp/m"
    rc=$?
    [ $rc -eq 99 ] && { fail "$name: the generator failed"; continue; }
    diff -r -x probe_pos.npy "$vec/inputs" "$tmp/m/inputs" >/dev/null \
        || { fail "$name: changed the inputs, not only the outputs"; continue; }
    failed=$(grep '^FAIL ' "$tmp/m.out" | sed 's/^FAIL \([^:]*\):.*/\1/' | tr '\n' ' ')
    if [ "$arrays" = "-" ]; then
        if [ $rc -eq 0 ]; then echo "PASS $name: harmless, validates"
        else fail "$name: a harmless variant fails: $failed"; fi
        continue
    fi
    [ $rc -eq 1 ] || { fail "$name: validate exited $rc, not 1 (the wrong reading passes)"; continue; }
    missing=""
    for a in $(echo "$arrays" | tr ',' ' '); do
        grep -q "^FAIL $a:" "$tmp/m.out" || missing="$missing $a"
    done
    if [ -n "$missing" ]; then fail "$name: caught, but not by$missing (failed: $failed)"
    else echo "PASS $name: caught by $failed"; fi
done <"$tab"
[ $n -gt 0 ] || { echo "FAIL: no mutant ran"; exit 1; }
echo "$n mutants, $bad failures"
[ $bad -eq 0 ] || exit 1
echo "PASS: the vectors catch every wrong reading listed"
