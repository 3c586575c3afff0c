#!/bin/sh
# tests/layers.sh: the rooms of tool/ call one way (tool/README).  Each
# room's sources may include only the headers of the rooms below it; a
# file that includes a header of a room above it, or of the front end,
# fails this test, naming the file and the line.
#   front end (tool/)  ->  harness  ->  runtime  ->  library
#   front end          ->  conformance            ->  library
#   every room         ->  common
set -u
src=${top_srcdir:-.}/tool
fail=0
# room: the include prefixes it must not use (rooms above or beside it).
check() {
  room=$1; shift
  for f in "$src/$room"/*.c "$src/$room"/*.h; do
    [ -f "$f" ] || continue
    for bad in "$@"; do
      if grep -n "#include \"$bad" "$f" >/dev/null; then
        grep -n "#include \"$bad" "$f" | sed "s|^|FAIL: ${f#$src/} includes a room above it: |"
        fail=1
      fi
    done
  done
}
check common    cli.h harness/ runtime/ conformance/
check runtime   cli.h harness/ conformance/ common/
check conformance cli.h harness/ runtime/
check harness   cli.h conformance/
# the front end's own functions (cli_*) are called only from tool/ itself
for room in common runtime conformance harness; do
  if grep -n '\bcli_[a-z_]*(' "$src/$room"/*.c "$src/$room"/*.h 2>/dev/null; then
    echo "FAIL: tool/$room calls the front end (cli_*)"; fail=1
  fi
done
# every room says what lives there, what it may call and what must not call it
for room in common runtime conformance harness; do
  [ -f "$src/$room/README" ] || { echo "FAIL: tool/$room has no README"; fail=1; }
done
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
