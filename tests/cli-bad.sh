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

# expect_no_err TEXT: the last run's stderr does not contain TEXT.
expect_no_err() {
  if grep -qF -- "$1" "$tmp/err"; then
    echo "FAIL: stderr has '$1':"; sed 's/^/  | /' "$tmp/err"; fails=$((fails + 1))
  fi
}

# expect_out TEXT: the last run's stdout contains TEXT.
expect_out() {
  if ! grep -qF -- "$1" "$tmp/out"; then
    echo "FAIL: stdout lacks '$1'"; fails=$((fails + 1))
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
for cmd in eval vectors validate bench keys; do
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
  for cmd in eval vectors validate bench keys; do
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

# ---- issue 15: a new user's first hour ---------------------------------
# Levers and budgets: the lever and its range are named, never an internal
# function; a budget above 1 is an error.
run 2 eval --method kvreviver/share=2;      expect_err "lever share=2"; expect_err "[0, 1)"
expect_no_err "kvr_plan"
run 2 eval --method kvreviver/share=1;      expect_err "[0, 1)"
run 2 eval --method kvreviver/recent=2;     expect_err "lever recent=2"; expect_no_err "kvr_plan"
run 2 eval --method kvreviver/varcap=-1;    expect_err "varcap=-1"
run 2 eval --budget 1.5;                    expect_err "1.5"
# Options: getopt_long everywhere, the same conventions in every command;
# the offending option is named.
for cmd in demo vectors validate bench keys; do
  run 0 $cmd --version;                     expect_out "kvreviver "
  run 0 $cmd -h;                            expect_out "Usage:"
  run 2 $cmd --help=1;                      expect_err "takes no value"
  run 2 $cmd -Z;                            expect_err "'-Z'"; expect_err "Usage:"
  run 2 $cmd --no-such-flag=1;              expect_err "'--no-such-flag'"
done
run 2 demo --seed;                          expect_err "'--seed' needs a value"
run 2 demo --seed=x;                        expect_err "--seed 'x'"
run 2 demo --seed=;                         expect_err "--seed"
run 2 demo --seed 1 extra;                  expect_err "unexpected argument 'extra'"
run 2 vectors --out;                        expect_err "'--out' needs a value"
run 2 vectors --out=;                       expect_err "--out DIR is required"
run 2 vectors --out "$tmp/v" extra;         expect_err "unexpected argument 'extra'"
run 2 validate --vectors "$tmp" --port;     expect_err "'--port' needs a value"
run 2 validate --vectors="$tmp" --port="$tmp" extra; expect_err "extra"
run 1 validate --vectors="$missing" --port="$tmp";   expect_err "$missing"
# bench: an empty run is a usage error; the grid's options check their items.
run 2 bench --max-n 1;                      expect_err "--max-n 1"; expect_err "no context"
run 2 bench --backend ref --max-n 100;      expect_err "the smallest is 512"
run 2 bench --backend=ref --context 4k --max-n 2k;   expect_err "the smallest is 4096"
run 2 bench --max-n 0;                      expect_err "--max-n '0'"
run 2 bench --context 2k,x;                 expect_err "--context 'x'"
run 2 bench --context 2k,,8k;               expect_err "--context"
run 2 bench --context '';                   expect_err "--context"
run 2 bench --batch 0;                      expect_err "--batch '0'"
run 2 bench --batch 2000;                   expect_err "--batch '2000'"
run 2 bench --budget 1;                     expect_err "--budget '1'"
run 2 bench --budget 0;                     expect_err "--budget '0'"
run 2 bench --budget 0.1,abc;               expect_err "--budget 'abc'"
run 2 bench --repeats -3;                   expect_err "--repeats '-3'"
run 2 bench --seed x --soak;                expect_err "--seed 'x'"
run 0 bench --help;                         expect_out "kvreviver-paper"; expect_out "--context"
expect_out "--batch"; expect_out "--budget"
# The man page is made from --help: every command and option is in it.
man="$top_builddir/tool/kvreviver.1"
[ -f "$man" ] || man="${top_srcdir:-.}/tool/kvreviver.1"
for word in 'kvreviver bench' 'model:PATH' '\-\-decode' '\-\-passkey' '\-\-forced' \
            '\-\-context' '\-\-batch' 'kvreviver validate' 'kvreviver vectors' 'kvreviver demo' \
            'kvreviver keys' 'chan_q4'; do
  cases=$((cases + 1))
  if grep -qF -- "$word" "$man"; then echo "ok: man page has $word"
  else echo "FAIL: $man lacks $word"; fails=$((fails + 1)); fi
done
# eval (issue 15): --workload's message names model:, and a malformed trace
# file's message does not repeat itself.
run 2 eval --workload bogus;              expect_err "model:"
mkdir -p "$tmp/trace/layer0"
for a in q k v; do echo garbage >"$tmp/trace/layer0/$a.npy"; done
run 1 eval --workload "trace:$tmp/trace"; expect_err "not a .npy file"
expect_no_err "malformed file (malformed file"
# keys: the options of eval's model workload, checked the same way; a model
# that does not fit (a context above its trained one, --text without a
# tokenizer) is a usage error once the model is read.
run 2 keys;                                 expect_err "--workload model:PATH is required"
run 2 keys --workload needle;               expect_err "is not model:PATH"
run 2 keys --workload model:;               expect_err "needs a model file"
run 2 keys --workload model:x --context 1;  expect_err "--context '1'"
run 2 keys --workload model:x --context 12x; expect_err "--context '12x'"
run 2 keys --workload model:x --seed -1;    expect_err "--seed '-1'"
run 2 keys --workload model:x --csv=;       expect_err "--csv needs a file name"
run 2 keys --workload model:x --text=;      expect_err "--text needs a file name"
run 2 keys --workload model:x --text;       expect_err "'--text' needs a value"
run 2 keys --workload model:x extra;        expect_err "unexpected argument 'extra'"
run 2 keys --budget 0.1;                    expect_err "'--budget'"
run 1 keys --workload "model:$missing";     expect_err "$missing"
run 1 keys --workload "model:$tmp";         expect_err "$tmp"
run 1 keys --workload "model:$missing" --csv "$missing"; expect_err "$missing"
[ -e "$missing" ] && { echo "FAIL: keys left $missing"; fails=$((fails + 1)); }
# issue 29: what a model path is, said once and plainly; every size a loader
# reads is checked against the file before anything is allocated
run 1 eval --workload "model:$missing" --context 16
expect_err "cannot open '$missing': No such file or directory"; expect_no_err "input/output error"
head -c 4096 /dev/urandom > "$tmp/random.bin" 2>/dev/null || dd if=/dev/urandom of="$tmp/random.bin" bs=4096 count=1 2>/dev/null
run 1 eval --workload "model:$tmp/random.bin" --context 16; expect_err "not a llama2.c or GGUF file"
expect_no_err "malformed file"
printf 'short' > "$tmp/short.bin"
run 1 eval --workload "model:$tmp/short.bin" --context 16;  expect_err "not a llama2.c or GGUF file"
run 1 eval --workload "model:$tmp" --context 16;            expect_err "is a directory"
run 1 eval --workload "model:/dev/zero" --context 16;       expect_err "not a regular file"
run 1 keys --workload "model:$tmp/random.bin";              expect_err "not a llama2.c or GGUF file"
model=${KVR_TEST_MODEL:-${top_srcdir:-.}/../shared/models/stories260K.bin}
if [ -r "$model" ]; then
  run 2 keys --workload "model:$model" --context 100000;          expect_err "trained context of 512"
  run 2 keys --workload "model:$model" --text "${top_srcdir:-.}/NEWS"; expect_err "no tokenizer"
  run 2 keys --workload "model:$model" --context 64 --csv "$tmp/k.csv" --text "${top_srcdir:-.}/NEWS"
  [ -e "$tmp/k.csv" ] && { echo "FAIL: keys kept a CSV of a usage error"; fails=$((fails + 1)); }
else
  echo "# SKIP keys on a model: $model is absent (set KVR_TEST_MODEL)"
fi

echo "cli-bad: $cases cases, $fails failures"
[ "$fails" -eq 0 ]
