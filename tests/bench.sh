#!/bin/sh
# bench.sh: `kvreviver bench` usage and exit codes, and a small run of the
# CPU reference's timing (the CUDA timing needs a GPU: cuda/device-check.sh).
set -u
kvr=$top_builddir/tool/kvreviver
fail() { echo "FAIL: $*"; exit 1; }
"$kvr" bench --help | grep -q -- '--backend cuda' || fail "--help does not describe --backend"
"$kvr" bench --bogus 2>/dev/null; [ $? -eq 2 ] || fail "an unknown flag does not exit 2"
"$kvr" bench --backend gpu 2>/dev/null; [ $? -eq 2 ] || fail "a bad --backend does not exit 2"
"$kvr" bench --repeats 0 2>/dev/null; [ $? -eq 2 ] || fail "--repeats 0 does not exit 2"
out=$("$kvr" bench --backend ref --max-n 1024 --repeats 1) || fail "bench --backend ref failed"
echo "$out"
echo "$out" | grep -q '^ *1024 ' || fail "no line for N = 1024"
"$kvr" bench --soak --appends 0 2>/dev/null; [ $? -eq 2 ] || fail "--soak --appends 0 does not exit 2"
out=$("$kvr" bench --soak --appends 20000) || fail "bench --soak failed"
echo "$out"
echo "$out" | grep -q '^soak: passed' || fail "bench --soak did not report a pass"
echo "PASS"
