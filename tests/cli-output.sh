#!/bin/sh
# cli-output.sh: the kvreviver tool tells the truth about its output
# (issue 29, item 1): every command whose standard output cannot be written
# (a full device) exits 1 naming it; a run that measured no compressed
# method exits 1 saying so; options that do not apply to the run chosen are
# usage errors; a failed --plot or --csv leaves no file behind.
set -u
kvr="${top_builddir:-.}/tool/kvreviver"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-out.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect WANT OUT ARGS...: run the tool with standard output to OUT; its
# exit status must be WANT (stderr in $tmp/err).
expect() {
  want=$1 out=$2; shift 2
  "$kvr" "$@" >"$out" 2>"$tmp/err" </dev/null; rc=$?
  if [ "$rc" -eq "$want" ]; then ok "kvreviver $* >$out -> $rc"
  else fail "kvreviver $* >$out: exit $rc, expected $want"; sed 's/^/  | /' "$tmp/err"; fi
}
expect_err() {
  grep -qF -- "$1" "$tmp/err" && ok "stderr says '$1'" || { fail "stderr lacks '$1':"; sed 's/^/  | /' "$tmp/err"; }
}

# ---- a full device: every command, exit 1 and the stream named ----------
small="--context 128 --decode 4 --head-dim 16"
if [ -w /dev/full ]; then
  for args in "--help" "--version" "demo --help" "eval --help" "vectors --help" "validate --help" \
              "bench --help" "keys --help" "eval -V" "demo -V" \
              "eval $small --method h2o --budget 0.25" \
              "demo" \
              "vectors --out $tmp/vec" \
              "validate --vectors $top_srcdir/tests/vectors --port $top_srcdir/tests/vectors/expected" \
              "bench --soak --appends 2000" \
              "bench --backend ref --context 512 --repeats 1"; do
    # shellcheck disable=SC2086
    expect 1 /dev/full $args
    expect_err "standard output"
  done
  # the same output to a file is a success (the control: the runs above can pass)
  expect 0 "$tmp/out" eval $small --method h2o --budget 0.25
  grep -q '^synthetic' "$tmp/out" && ok "the table was written" || fail "no table in $tmp/out"
  expect 0 "$tmp/out" validate --vectors "$top_srcdir/tests/vectors" --port "$top_srcdir/tests/vectors/expected"
  # --csv - to a full device
  expect 1 /dev/full eval $small --method h2o --budget 0.25 --csv -
  expect_err "standard output"
else
  echo "# SKIP the full-device cases: no writable /dev/full"
fi

# ---- a run that measured no compressed method fails -------------------------
expect 1 "$tmp/out" eval $small --budget 0.001
expect_err "no compressed method was measured"
expect 1 "$tmp/out" eval $small --budget 0.001 --method h2o,kvreviver
expect_err "no compressed method was measured"
expect 0 "$tmp/out" eval $small --budget 0.001,0.25 --method h2o      # one budget measured
expect 0 "$tmp/out" eval $small --method full                          # nothing compressed asked
# a model at a context no method fits (a tiny random llama2.c checkpoint)
if [ -n "${PYTHON3:-}" ] && "$PYTHON3" - "$tmp/tiny.bin" <<'PY'
import struct, random, sys
random.seed(1)
D, F, L, H, KV, V, S = 16, 32, 1, 2, 2, 32, 64
hs = D // H; kd = KV * hs
n = V*D + L*D + L*D*D + 2*L*kd*D + L*D*D + L*D + 3*L*F*D + D + 2*(S*hs//2)
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<7i', D, F, L, H, KV, V, S))
    f.write(struct.pack('<%df' % n, *[random.gauss(0, 0.3) for _ in range(n)]))
PY
then
  expect 1 "$tmp/out" eval --workload "model:$tmp/tiny.bin" --context 2 --threads 1
  expect_err "no compressed method was measured"
  expect 0 "$tmp/out" eval --workload "model:$tmp/tiny.bin" --context 32 --method h2o --budget 0.5 --threads 1
else
  echo "# SKIP the model case: no python3 to write a tiny checkpoint"
fi

# ---- options that do not apply: usage errors that say why -------------------
expect 2 "$tmp/out" bench --soak --backend cuda;   expect_err "--backend does not apply to --soak"
expect 2 "$tmp/out" bench --soak --context 2k;     expect_err "--context does not apply to --soak"
expect 2 "$tmp/out" bench --soak --quick;          expect_err "--quick does not apply to --soak"
expect 2 "$tmp/out" bench --backend ref --quick;   expect_err "--quick does not apply to --backend ref"
expect 2 "$tmp/out" bench --backend ref --batch 8; expect_err "--batch does not apply to --backend ref"
expect 2 "$tmp/out" bench --appends 10;            expect_err "--appends applies only to --soak"
expect 2 "$tmp/out" bench --seed 3;                expect_err "--seed applies only to --soak"

# ---- a failed --plot or --csv leaves no file ---------------------------------
mkdir "$tmp/o" || exit 99
if grep -q 'KVR_GNUPLOT' "$top_builddir/config.h" 2>/dev/null; then
  expect 1 "$tmp/out" eval $small --method full --plot "$tmp/o/p.svg"      # nothing to plot
  expect_err "nothing to plot"
  expect 1 "$tmp/out" eval $small --budget 0.001 --plot "$tmp/o/p.svg"    # every method skipped
fi
expect 1 "$tmp/out" eval $small --budget 0.001 --csv "$tmp/o/c.csv"
left=$(ls -A "$tmp/o")
[ -z "$left" ] && ok "no file left by the failed runs" || fail "files left behind: $left"
expect 0 "$tmp/out" eval $small --method h2o --budget 0.25 --csv "$tmp/o/c.csv"
[ "$(ls -A "$tmp/o")" = c.csv ] && ok "a good --csv is written under its own name only" \
  || fail "after a good --csv: $(ls -A "$tmp/o")"

[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "PASS: cli-output"
