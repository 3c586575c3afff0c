#!/bin/sh
# doc-index.sh: doc/README.md lists every page of doc/, and doc/local.mk
# installs and distributes every one (issue 29: the index had omitted six);
# README.md says what a new user needs (the man page before install, the
# fuzz build, the model tests' KVR_TEST_MODEL, the run path when linking).
set -u
top_srcdir=${top_srcdir:-.}
fails=0
for f in "$top_srcdir"/doc/*.md; do
  page=$(basename "$f")
  [ "$page" = README.md ] && continue
  grep -q "\`$page\`" "$top_srcdir/doc/README.md" || { echo "FAIL: doc/README.md does not list $page"; fails=$((fails + 1)); }
  grep -q "doc/$page" "$top_srcdir/doc/local.mk" || { echo "FAIL: doc/local.mk does not install doc/$page"; fails=$((fails + 1)); }
done
# what a new user needs from README.md (issue 29, item 6)
for want in 'man ./tool/kvreviver.1' '--enable-fuzz CC=clang' 'KVR_TEST_MODEL' 'help2man' 'OpenBLAS' \
            '-Wl,-rpath,$(pkg-config --variable=libdir kvreviver)' 'share/doc/kvreviver'; do
  grep -qF -- "$want" "$top_srcdir/README.md" || { echo "FAIL: README.md does not say '$want'"; fails=$((fails + 1)); }
done
[ -f "$top_srcdir/tool/kvreviver.1" ] || { echo "FAIL: README.md names tool/kvreviver.1, absent"; fails=$((fails + 1)); }
grep -q 'share/doc/kvreviver' "$top_srcdir/lib/kvreviver.h" || { echo "FAIL: kvreviver.h does not say where doc/ is installed"; fails=$((fails + 1)); }
echo "doc-index: $(ls "$top_srcdir"/doc/*.md | wc -l) pages, $fails problems"
[ "$fails" -eq 0 ]
