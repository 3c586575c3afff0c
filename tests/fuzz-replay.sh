#!/bin/sh
# fuzz-replay.sh: replay every fuzz target's seed corpus (fuzz/corpus/<t>/)
# and every crash input found so far (fuzz/regress/<t>/) through the
# target's checks, without libFuzzer (fuzz/replay.c).  A regression aborts.
set -u
status=0
for t in cache_load npy_read model_load; do
  dirs="$top_srcdir/fuzz/corpus/$t"
  [ -d "$top_srcdir/fuzz/regress/$t" ] && dirs="$dirs $top_srcdir/fuzz/regress/$t"
  echo "replay $t: $dirs"
  # shellcheck disable=SC2086
  ${KVR_REPLAY_WRAPPER:-} "$top_builddir/fuzz/replay-$t" $dirs || { echo "FAIL: $t"; status=1; }
done
exit $status
