#!/bin/sh
# skip-why-check.sh: make check's driver (tests/skip-why.sh) shows why a
# test was skipped, for a whole test (exit 77) and for a skipped part.
set -u
top_srcdir=${top_srcdir:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skip-why.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\necho "SKIP: no frobnicator here (set KVR_FROB)"\nexit 77\n' > "$tmp/whole.sh"
printf '#!/bin/sh\necho "ok 1"\necho "# SKIP the model part: no model (set KVR_TEST_MODEL)"\nexit 0\n' > "$tmp/part.sh"
fails=0
for t in whole part; do
  out=$(sh "$top_srcdir/tests/skip-why.sh" sh "$top_srcdir/build-aux/test-driver" --test-name "$t.sh" \
        --log-file "$tmp/$t.log" --trs-file "$tmp/$t.trs" --color-tests no --enable-hard-errors yes \
        --expect-failure no -- sh "$tmp/$t.sh")
  echo "$out"
  case $t in
    whole) echo "$out" | grep -q "^SKIP: whole.sh" && echo "$out" | grep -q "skipped (whole.sh): no frobnicator here (set KVR_FROB)" \
             || { echo "FAIL: the reason of a skipped test is not shown"; fails=$((fails + 1)); } ;;
    part)  echo "$out" | grep -q "^PASS: part.sh" && echo "$out" | grep -q "skipped in part.sh: the model part: no model (set KVR_TEST_MODEL)" \
             || { echo "FAIL: a skipped part is not shown"; fails=$((fails + 1)); } ;;
  esac
done
[ "$fails" -eq 0 ]
