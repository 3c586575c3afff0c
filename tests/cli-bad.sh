#!/bin/sh
# cli-bad.sh: feed the kvreviver tool bad invocations and check its exit
# codes and messages (issue 8): never a crash or a core dump (exit >= 128),
# usage errors exit 2 with a usage message, missing files exit 1 naming the
# path.  Every command is in, so the block marked FINAL CONTRACT runs too
# (KVR_CLI_FINAL=0 turns it off, for a build with stub commands).
set -u
kvr="${top_builddir:-.}/tool/kvreviver"
final=${KVR_CLI_FINAL:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-cli.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
missing="$tmp/no-such-dir/missing.npy"
fails=0 cases=0

# run WANT ARGS...: run the tool with ARGS (under a time limit); WANT is an
# exit code, or a list like "1|2" of codes that are all fine.
run() {
  want=$1; shift
  cases=$((cases + 1))
  if command -v timeout >/dev/null 2>&1; then
    timeout 60 "$kvr" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
  else
    "$kvr" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
  fi
  if [ "$rc" -ge 124 ]; then
    echo "FAIL: kvreviver $*: exit $rc (crash, signal or time-out)"; sed 's/^/  | /' "$tmp/err"
    fails=$((fails + 1)); return 1
  fi
  case "|$want|" in
    *"|$rc|"*) ;;
    *) echo "FAIL: kvreviver $*: exit $rc, expected $want"; sed 's/^/  | /' "$tmp/err"
       fails=$((fails + 1)); return 1 ;;
  esac
  if [ "$rc" -ne 0 ] && [ ! -s "$tmp/err" ]; then
    echo "FAIL: kvreviver $*: exit $rc with nothing on stderr"; fails=$((fails + 1)); return 1
  fi
  echo "ok: kvreviver $* -> $rc"
  return 0
}

# expect_err TEXT: the last run's stderr contains TEXT.
expect_err() {
  if ! grep -qF -- "$1" "$tmp/err"; then
    echo "FAIL: stderr lacks '$1':"; sed 's/^/  | /' "$tmp/err"; fails=$((fails + 1))
  fi
}

# ---- top level: final in every branch ---------------------------------
run 2;                      expect_err "Usage:"
run 2 nosuch;               expect_err "unknown command 'nosuch'"; expect_err "Usage:"
run 2 --nosuch;             expect_err "Usage:"
run 2 -x
run 2 ''
run 0 --help
run 0 --version

# ---- demo: final in every branch --------------------------------------
run 2 demo --seed x;        expect_err "--seed 'x'"
run 2 demo --seed '';       expect_err "--seed"
run 2 demo --seed 12abc;    expect_err "12abc"
run 2 demo --seed;          expect_err "Usage:"
run 2 demo --bogus;         expect_err "Usage:"
run 2 demo extra-argument
run 0 demo --help

# ---- stub or final: bad input is refused (1 for a stub, 2 when final), -
# ---- never accepted and never a crash ----------------------------------
for cmd in eval vectors validate bench; do
  run "1|2" $cmd --no-such-flag
  run "1|2" $cmd --no-such-flag=1 extra
done
run "1|2" eval --budget abc
run "1|2" eval --budget
run "1|2" eval --context -5
run "1|2" eval --method no-such-method
run "1|2" vectors --out
run "1|2" validate --vectors
run "1|2" validate --vectors "$missing" --port "$tmp"
run "1|2" validate --vectors "$tmp" --port "$missing"
run "1|2" bench --backend no-such-backend

# ---- FINAL CONTRACT (enable with KVR_CLI_FINAL=1 after merging) --------
# Unknown flags, missing values and bad numbers: usage on stderr, exit 2.
# Missing or unreadable files: a message naming the path, exit 1.
if [ "$final" = 1 ]; then
  for cmd in eval vectors validate bench; do
    run 2 $cmd --no-such-flag;          expect_err "Usage:"
    run 0 $cmd --help
  done
  run 2 eval --budget abc;              expect_err "abc"
  run 2 eval --budget;                  expect_err "Usage:"
  run 2 eval --budget -0.5;             expect_err "-0.5"
  run 2 eval --budget 0.1,,0.2
  run 2 eval --context 0;               expect_err "--context"
  run 2 eval --context 12x
  run 2 eval --seed x;                  expect_err "--seed"
  run 2 eval --method no-such-method;   expect_err "no-such-method"
  run 2 eval --method kvreviver/colour=red;   expect_err "colour"
  run 2 eval --method kvreviver/share=x;      expect_err "share=x"
  run 2 eval --method h2o/share=0.5;          expect_err "kvreviver methods only"
  run 2 eval --workload "model:$missing" --method kvreviver/depth=1.5;  expect_err "depth=1.5"
  run 2 eval --workload no-such-workload
  run 1 eval --workload "model:$missing" --context 16 --budget 0.5;  expect_err "$missing"
  run 1 eval --context 64 --budget 0.5 --csv "$missing";            expect_err "$missing"
  run 2 vectors;                        expect_err "--out"
  run 2 vectors --out;                  expect_err "Usage:"
  : > "$tmp/a-file"                       # a directory cannot be made under a file
  run 1 vectors --out "$tmp/a-file/sub";                          expect_err "$tmp/a-file"
  run 2 validate --port "$tmp";         expect_err "--vectors"
  run 2 validate --vectors "$tmp";      expect_err "--port"
  run 1 validate --vectors "$missing" --port "$tmp";               expect_err "$missing"
  run 1 validate --vectors "$tmp" --port "$missing";               expect_err "$tmp"
  run 2 bench --backend no-such-backend; expect_err "no-such-backend"
  run 2 demo --seed -1;                 expect_err "-1"
  run 2 demo --seed 99999999999999999999999
fi

echo "cli-bad: $cases cases, $fails failures"
[ "$fails" -eq 0 ]
