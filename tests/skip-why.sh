#!/bin/sh
# skip-why.sh: the test driver of make check (LOG_DRIVER): Automake's
# test-driver, then the reasons of what was skipped, on the console beside
# the result (issue 29: they were only in tests/*.log).  A test that exits
# 77 gets its "SKIP: ..." lines (or its last line) shown; a test that ran
# shows the parts it skipped ("# SKIP ..." lines), such as the model tests
# without a model (point them at one with KVR_TEST_MODEL=PATH).
#   usage: skip-why.sh TEST-DRIVER-COMMAND... --log-file F --trs-file T ... -- TEST
set -u
log= trs= name=
prev=
for a in "$@"; do
  case $prev in
    --log-file) log=$a ;;
    --trs-file) trs=$a ;;
    --test-name) name=$a ;;
  esac
  [ "$a" = -- ] && break
  prev=$a
done
"$@"
rc=$?
[ -n "$log" ] && [ -r "$log" ] || exit $rc
if [ -n "$trs" ] && grep -q '^:test-result: SKIP' "$trs" 2>/dev/null; then
  why=$(grep -E '^(# )?SKIP' "$log" | grep -v '(exit status: ' | sed 's/^# //; s/^SKIP:* *//' | head -n 3)
  [ -n "$why" ] || why=$(grep -v '^\(SKIP\|PASS\|FAIL\|ERROR\) ' "$log" | grep . | tail -n 1)
  printf '%s\n' "$why" | sed "s|^|  skipped ($name): |"
else
  grep '^# SKIP' "$log" | sed "s|^# SKIP *|  skipped in $name: |" | head -n 5
fi
exit $rc
