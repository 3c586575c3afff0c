#!/bin/sh
# cli-eval.sh: the contract of `kvreviver eval` and `kvreviver demo`
# (doc/eval.md, kvreviver(1)): exit codes 0/1/2, the CSV header, budget 1.0
# at float32 rounding level, bytes_ratio <= budget, --plot (every workload),
# trace:DIR.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
kvr=$top_builddir/tool/kvreviver
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-eval.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
n=0

ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }

# expect CODE DESCRIPTION -- ARGS...: run kvreviver, check its exit status
expect() {
  code=$1; what=$2; shift 3
  "$kvr" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" -eq "$code" ]; then ok "$what (exit $rc)"; else fail "$what: exit $rc, expected $code"; sed 's/^/# /' "$tmp/err"; fi
}

small="--context 256 --steps 4 --head-dim 16"

# ---- exit 0 ----------------------------------------------------------------
expect 0 "eval --help" -- eval --help
grep -q -- '--budget' "$tmp/out" && grep -q -- '--plot' "$tmp/out" && grep -q -- '--seeds' "$tmp/out" \
  && ok "--help lists --budget, --plot, --seeds" || fail "--help lists the options"
# issue 29: the model workload has its own help, in either order
"$kvr" eval --workload model:x.gguf --help >"$tmp/mh" 2>&1 && "$kvr" eval --help -w model:x.gguf >"$tmp/mh2" 2>&1 \
  && grep -q "^Usage: kvreviver eval --workload model:PATH" "$tmp/mh" && cmp -s "$tmp/mh" "$tmp/mh2" \
  && grep -q -- "--passkey" "$tmp/mh" && ! cmp -s "$tmp/mh" "$tmp/out" \
  && ok "eval --workload model:PATH --help is the model's help" || fail "model help: $(head -n 3 "$tmp/mh")"
expect 0 "demo --help" -- demo --help
# the demo: float16 bytes, every family beside the default, what does not fit
expect 0 "demo" -- demo
grep -q "float16 bytes" "$tmp/out" && grep -q "^needle .* kivi/bits=3 " "$tmp/out" \
  && grep -q "Against the best KIVI" "$tmp/out" && grep -q "Against the best eviction with quantized storage" "$tmp/out" \
  && grep -q "Against the best MiKV, mikv" "$tmp/out" && grep -q "MiKV: does not fit this budget" "$tmp/out" \
  && grep -q "kivi does not fit this budget" "$tmp/out" && grep -q "^needle .* kvreviver/body=2 " "$tmp/out" \
  && grep -q "kvreviver/body=2 does not fit this budget" "$tmp/out" && ok "demo: f16 bytes, every family, what does not fit" \
  || fail "demo reading: $(tail -n 20 "$tmp/out")"

# ---- usage errors: exit 2 ----------------------------------------------------
expect 2 "unknown option" -- eval --frobnicate
expect 2 "missing value" -- eval --budget
expect 2 "budget 0" -- eval $small --budget 0
expect 2 "budget above 1" -- eval $small --budget 1.5
expect 2 "budget not a number" -- eval $small --budget 0.1,abc
expect 2 "unknown method" -- eval $small --method h2o,nope
expect 2 "unknown workload" -- eval $small --workload books
expect 2 "rotate not 0 or 1" -- eval $small --method kvreviver/rotate=3
grep -q "lever rotate=3: not 0 or 1" "$tmp/err" && ok "rotate=3 names the lever" || fail "rotate=3: $(cat "$tmp/err")"
expect 2 "bad element type" -- eval $small --elem f8
expect 2 "plot extension" -- eval $small --plot "$tmp/x.pdf"
expect 2 "negative seed" -- eval $small --seed -1
expect 2 "--seed and --seeds" -- eval $small --seed 1 --seeds 2
expect 2 "q-heads not a multiple" -- eval $small --kv-heads 3 --q-heads 4
expect 2 "steps leave no prefill" -- eval --context 8 --steps 8
expect 2 "needle context too short" -- eval --workload needle --context 40 --steps 16
expect 2 "positional argument" -- eval stray
expect 2 "demo unknown argument" -- demo --frobnicate
grep -q "kvreviver" "$tmp/err" && ok "usage error says why on stderr" || fail "usage error message"

# ---- run-time failures: exit 1, the message names the path -------------------
expect 1 "unwritable --csv" -- eval $small --method full --csv "$tmp/no/such/dir/x.csv"
grep -q "$tmp/no/such/dir/x.csv" "$tmp/err" && ok "message names the CSV path" || fail "message names the CSV path"
expect 1 "unwritable --plot" -- eval $small --method full,h2o --plot "$tmp/no/such/dir/x.svg"
grep -q "$tmp/no/such/dir/x.svg" "$tmp/err" && ok "message names the plot path" || fail "message names the plot path"
expect 1 "missing trace" -- eval --workload "trace:$tmp/none"
grep -q "$tmp/none" "$tmp/err" && ok "message names the trace directory" || fail "message names the trace directory"
# spec §19.13: the rotation needs a power-of-two head_dim; the cell fails with the reason
expect 1 "rotate on head_dim 48" -- eval --context 256 --steps 4 --head-dim 48 --budget 0.25 --method kvreviver/rotate=1
grep -q "needs a power-of-two head_dim" "$tmp/err" && ok "rotate=1 on head_dim 48 says why" || fail "rotate, 48: $(cat "$tmp/err")"
expect 0 "rotate on head_dim 16" -- eval $small --budget 0.25 --method kvreviver/rotate=1,kvreviver/balance=1/rotate=1

# ---- CSV to stdout: header, no table -----------------------------------------
expect 0 "eval --csv -" -- eval $small --budget 0.1,0.25 --csv -
header=$(head -n 1 "$tmp/out")
case $header in
  workload,context,budget,method,*) ok "CSV header starts workload,context,budget,method" ;;
  *) fail "CSV header: $header" ;;
esac
for col in bytes_ratio exact_ratio attn_rel_err mass_exact needle_acc seeds; do
  echo "$header" | tr ',' '\n' | grep -qx "$col" && ok "CSV has $col" || fail "CSV lacks $col"
done
[ "$(grep -c . "$tmp/out")" -eq 22 ] && ok "one row per method and budget, full once (21 + header)" \
  || fail "CSV rows: $(grep -c . "$tmp/out") lines"
[ -s "$tmp/err" ] && fail "stderr not empty for a short run without a terminal: $(cat "$tmp/err")" || ok "a short piped run prints no progress line (the first comes after KVR_PROGRESS_INTERVAL)"

# col NAME FILE: the values of CSV column NAME
col() { awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$2"; }

# ---- budget 1.0: float32 rounding level for every method ---------------------
# tests/eval checks the derived float32 bound per step; here the contract:
# at 256 positions the worst-case rounding bound is about n u (sum_t p_t |v_t|) / ||o||,
# under 1e-3 for these heads, while every compressed row errs by more than 0.1.
expect 0 "eval --budget 1.0, every method" -- eval $small --budget 1.0 --csv "$tmp/one.csv"
bad=$(col attn_rel_err "$tmp/one.csv" | awk '$1 >= 1e-3 || $1 != $1 + 0 { print }')
[ -z "$bad" ] && [ "$(grep -c . "$tmp/one.csv")" -eq 12 ] && ok "budget 1.0: attn_rel_err < 1e-3 for all 11 methods" \
  || fail "budget 1.0 errors: $bad"
grep -q "^synthetic" "$tmp/out" && ok "table on stdout beside --csv FILE" || fail "table on stdout"

# ---- bytes_ratio <= budget, needle_acc where it applies ----------------------
expect 0 "eval needle, two seeds" -- eval --workload needle --context 512 --steps 4 --head-dim 16 --budget 0.1,0.25 --seeds 2 --csv "$tmp/n.csv"
over=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "budget") b = i; if ($i == "bytes_ratio") r = i; if ($i == "method") m = i } next }
                $m != "full" && $r > $b { print $m, $b, $r }' "$tmp/n.csv")
[ -z "$over" ] && ok "every compressed row has bytes_ratio <= budget" || fail "over budget: $over"
empty=$(col needle_acc "$tmp/n.csv" | grep -c '^$')
[ "$empty" -eq 0 ] && ok "needle rows carry needle_acc" || fail "needle rows without needle_acc: $empty"
[ "$(col seeds "$tmp/n.csv" | sort -u)" = 2 ] && ok "seeds column says 2" || fail "seeds column"
[ "$(col needle_acc "$tmp/one.csv" | grep -vc '^$')" -eq 0 ] && ok "synthetic rows leave needle_acc empty" \
  || fail "synthetic rows have needle_acc"

# ---- --plot --------------------------------------------------------------------
# valid_svg FILE: well-formed XML with an <svg> root (xmllint, else python3,
# else the opening and closing tags)
valid_svg() {
  if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$1" 2>/dev/null && grep -q '<svg' "$1"
  elif [ -n "${PYTHON3:-}" ]; then
    "$PYTHON3" -c 'import sys, xml.etree.ElementTree as E; sys.exit(not E.parse(sys.argv[1]).getroot().tag.endswith("svg"))' "$1"
  else
    grep -q '<svg' "$1" && grep -q '</svg>' "$1"
  fi
}
# ylabel FILE: the y axis label's text (its tags stripped), the one text
# gnuplot turns upright (270)
ylabel() { grep -A1 -e 'rotate(270)' -e 'rotate(-90)' "$1" | sed -n 2p | sed 's/<[^>]*>//g; s/^[[:space:]]*//'; }
if grep -q '^#define KVR_GNUPLOT' "$top_builddir/config.h"; then
  expect 0 "--plot SVG" -- eval $small --method h2o,kvreviver --budget 0.1,0.25 --plot "$tmp/p.svg"
  valid_svg "$tmp/p.svg" && ok "SVG written, well-formed" || fail "no valid SVG in $tmp/p.svg"
  case $(ylabel "$tmp/p.svg") in
    attn_rel_err*lower\ is\ better*) ok "synthetic plot: y is attn_rel_err" ;;
    *) fail "synthetic plot y label: '$(ylabel "$tmp/p.svg")'" ;;
  esac
  grep -q 'bytes_ratio' "$tmp/p.svg" && ok "x is the measured bytes_ratio" || fail "x label lacks bytes_ratio"
  expect 0 "--plot PNG" -- eval $small --method h2o --budget 0.1,0.25 --plot "$tmp/p.png"
  [ "$(head -c 4 "$tmp/p.png" | od -An -c | tr -d ' ')" = '211PNG' ] && ok "PNG written" || fail "not a PNG"
  expect 0 "--plot needle" -- eval --workload needle --context 256 --decode 4 --head-dim 16 --method full,h2o,kvreviver \
    --budget 0.25,0.5 --plot "$tmp/n.svg"
  valid_svg "$tmp/n.svg" && ok "needle SVG well-formed" || fail "no valid SVG in $tmp/n.svg"
  case $(ylabel "$tmp/n.svg") in
    needle_acc*higher\ is\ better*) ok "needle plot: y is needle_acc" ;;
    *) fail "needle plot y label: '$(ylabel "$tmp/n.svg")'" ;;
  esac
  grep -q '<title>full (budget 1)</title>' "$tmp/n.svg" && ok "needle plot: full as a reference line" \
    || fail "needle plot lacks full's line"
  model=${KVR_TEST_MODEL:-$top_srcdir/../shared/models/stories260K.bin}
  if [ -r "$model" ]; then
    expect 0 "--plot on a model" -- eval --workload "model:$model" --context 64 --decode 8 --budget 0.25,0.5 \
      --method full,h2o,snapkv/store=q4,kvreviver --plot "$tmp/m.svg"
    valid_svg "$tmp/m.svg" && ok "model SVG well-formed" || fail "no valid SVG in $tmp/m.svg"
    for m in h2o snapkv/store=q4 'kvreviver (default)' 'full (the reference)'; do
      grep -qF "<title>$m</title>" "$tmp/m.svg" && ok "model plot names $m" || fail "model plot lacks $m"
    done
    case $(ylabel "$tmp/m.svg") in
      top1_agree*higher\ is\ better*) ok "model plot: y is top1_agree" ;;
      *) fail "model plot y label: '$(ylabel "$tmp/m.svg")'" ;;
    esac
    grep -q 'attn_rel_err' "$tmp/m.svg" && fail "model plot mentions attn_rel_err" || ok "model plot: no attn_rel_err"
    # a usage error found once the model is loaded leaves no plot behind
    expect 2 "model --plot, context above trained" -- eval --workload "model:$model" --context 100000 --plot "$tmp/m2.svg"
    [ -e "$tmp/m2.svg" ] && fail "an empty plot was left behind" || ok "no plot left after a usage error"
  else
    echo "# SKIP --plot on a model: no $model (set KVR_TEST_MODEL)"
  fi
else
  expect 1 "--plot without gnuplot" -- eval $small --method h2o --plot "$tmp/p.svg"
  grep -qi gnuplot "$tmp/err" && ok "says gnuplot is missing" || fail "no word on gnuplot"
fi

# ---- trace:DIR -----------------------------------------------------------------
if [ -n "${PYTHON3:-}" ]; then
  "$PYTHON3" - "$tmp/trace" <<'PY'
import os, struct, sys, random
d = sys.argv[1]
random.seed(3)
n, hq, hkv, D = 64, 2, 1, 8
def npy(path, shape):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % shape
    pad = (64 - (10 + len(hdr) + 1) % 64) % 64
    hdr = hdr + ' ' * pad + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode())
        count = shape[0] * shape[1] * shape[2]
        f.write(struct.pack('<%df' % count, *[random.gauss(0, 1) for _ in range(count)]))
for layer in range(2):
    os.makedirs('%s/layer%d' % (d, layer))
    npy('%s/layer%d/q.npy' % (d, layer), (n, hq, D))
    npy('%s/layer%d/k.npy' % (d, layer), (n, hkv, D))
    npy('%s/layer%d/v.npy' % (d, layer), (n, hkv, D))
PY
  "$kvr" eval --workload "trace:$tmp/trace" --steps 4 --method full,streaming --budget 0.5 --csv - >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 0 ] && grep -q "not implemented" "$tmp/err"; then
    echo "# SKIP trace:DIR: kvr_npy_read is not implemented yet (lib/npy.c)"
  elif [ $rc -eq 0 ]; then
    ok "eval trace:DIR"
    [ "$(col seeds "$tmp/out" | sort -u)" = 2 ] && ok "trace: both layers averaged" || fail "trace layers: $(col seeds "$tmp/out")"
    [ "$(col context "$tmp/out" | sort -u)" = 64 ] && ok "trace: context = its positions" || fail "trace context"
  else
    fail "eval trace:DIR: exit $rc"; sed 's/^/# /' "$tmp/err"
  fi
else
  echo "# SKIP trace:DIR: no python3 to write the trace"
fi

# ---- one eval: the same options on every workload --------------------------------
# --csv - is standard output on every workload, never a file named '-'
cd "$tmp" || exit 99
expect 0 "needle --csv -" -- eval --workload needle --context 256 --decode 4 --head-dim 16 --method full,h2o --csv -
head -n 1 "$tmp/out" | grep -q '^workload,context,budget,method,' && ok "needle: CSV on stdout" || fail "needle: no CSV on stdout"
for c in needle_lo needle_hi top1_agree kl ppl passkey_acc passkey_lo passkey_hi trials; do
  head -n 1 "$tmp/out" | tr ',' '\n' | grep -qx "$c" && ok "one CSV header: $c" || fail "CSV header lacks $c"
done
lo=$(col needle_lo "$tmp/out" | sed -n 2p); hi=$(col needle_hi "$tmp/out" | sed -n 2p); acc=$(col needle_acc "$tmp/out" | sed -n 2p)
awk -v lo="$lo" -v hi="$hi" -v a="$acc" 'BEGIN { exit !(lo != "" && lo <= a && a <= hi && hi <= 1) }' \
  && ok "needle row: Wilson interval around needle_acc ($lo <= $acc <= $hi)" || fail "needle interval: $lo $acc $hi"
grep -q '\[' "$tmp/out" && fail "no table beside --csv -" || ok "no table beside --csv -"
expect 0 "needle table shows the interval" -- eval --workload needle --context 256 --decode 4 --head-dim 16 --method full
grep -q 'needle_acc' "$tmp/out" && grep -q '^needle .*[0-9] \[[0-9.]*,[0-9.]*\]$' "$tmp/out" && ok "table: needle_acc [lo,hi]" || fail "table interval: $(cat "$tmp/out")"
[ -e "$tmp/-" ] && fail "a file named '-' was written" || ok "no file named '-'"
expect 0 "--steps is --decode" -- eval $small --method full --decode 4 --csv -
[ "$(col steps "$tmp/out" | sed -n 1p)" = 4 ] && ok "--decode sets steps" || fail "--decode: $(col steps "$tmp/out")"
# options that cannot apply to a workload: usage errors that say why
expect 2 "--text on synthetic" -- eval $small --text /dev/null
grep -q "applies only to --workload model" "$tmp/err" && ok "says --text is for models" || fail "--text message"
expect 2 "--passkey on needle" -- eval --workload needle --passkey 3
grep -q -- "--passkey applies only" "$tmp/err" && ok "says --passkey is for models" || fail "--passkey message"
expect 2 "--windows on synthetic" -- eval $small --windows 2
expect 2 "--threads on synthetic" -- eval $small --threads 2
grep -q "one thread" "$tmp/err" && ok "says why --threads does not apply" || fail "--threads message"
expect 2 "--kv-heads on a trace" -- eval --workload "trace:$tmp" --kv-heads 2
grep -q "files set the heads" "$tmp/err" && ok "says the trace sets its heads" || fail "trace heads message"
expect 2 "unknown option on needle" -- eval --workload needle --frobnicate
grep -q "unknown option '--frobnicate'" "$tmp/err" && ok "names the unknown option" || fail "unknown option message"
expect 2 "unknown option on a model" -- eval --workload "model:$tmp/none" --frobnicate
expect 2 "--plot with --forced 0" -- eval --workload "model:$tmp/none" --forced 0 --passkey 2 --plot "$tmp/x.svg"
grep -q "forced 0 turns off" "$tmp/err" && ok "says why --plot needs the teacher-forced run" || fail "--plot message"
expect 2 "--head-dim on a model" -- eval --workload "model:$tmp/none" --head-dim 8
grep -q "model file sets its heads" "$tmp/err" && ok "says the model sets its heads" || fail "model heads message"
expect 2 "--windows without --text" -- eval --workload "model:$tmp/none" --windows 2
expect 1 "model:DIR" -- eval --workload "model:$tmp"
grep -q "is a directory" "$tmp/err" && ok "model:DIR says it is a directory" || fail "model:DIR: $(cat "$tmp/err")"
grep -q "9223372036854775807" "$tmp/err" && fail "model:DIR: a size" || ok "model:DIR: no bogus size"
# issue 29: the tables say "runs", and print every error with 4 significant
# digits (never 0.99995 as "1")
"$kvr" eval --context 256 --steps 4 --head-dim 16 --method full,h2o,kvreviver --budget 0.5 >"$tmp/out" 2>/dev/null
head -n 1 "$tmp/out" | grep -q " runs bytes_ratio " && ok "the synthetic table's run count is 'runs'" \
  || fail "table header: $(head -n 1 "$tmp/out")"
[ "$(awk 'NR > 1 && NF >= 9 { v = $8; sub(/e.*/, "", v); if (v !~ /\./) { print; next }
       gsub(/\./, "", v); sub(/^0+/, "", v); if (length(v) != 4) print }' "$tmp/out")" = "" ] \
  && [ "$(awk 'NR > 1 && NF >= 9' "$tmp/out" | wc -l)" -eq 3 ] && ok "attn_rel_err has 4 significant digits" \
  || fail "attn_rel_err format: $(cat "$tmp/out")"
# issue 29: a long run is never silent; piped, progress comes as plain lines
# (every KVR_PROGRESS_INTERVAL seconds) with an estimate of the time left
KVR_PROGRESS_INTERVAL=0.05 "$kvr" eval --context 8192 --decode 64 --method h2o --budget 0.25 2>"$tmp/err" | cat >/dev/null
grep -q "^kvreviver: eval: seed 1 (1/1)  budget 0.25  h2o  \[0/1, [0-9]*s elapsed, about [0-9]*s left\]$" "$tmp/err" \
  && ok "piped eval prints progress lines with the time left" || fail "piped progress: $(cat "$tmp/err")"
KVR_PROGRESS_INTERVAL=-1 "$kvr" eval --context 8192 --decode 64 --method h2o --budget 0.25 2>"$tmp/err" | cat >/dev/null
[ ! -s "$tmp/err" ] && ok "KVR_PROGRESS_INTERVAL=-1 turns the lines off" || fail "progress off: $(cat "$tmp/err")"
# ... and a run that will be large says so before it starts
if command -v timeout >/dev/null 2>&1; then
  timeout 3 "$kvr" eval --context 200000 --decode 2000 --method h2o --budget 0.1 >/dev/null 2>"$tmp/err"
  grep -q "warning: a large run: up to [0-9.]* GiB of memory and roughly [0-9hms]* (1 cell at --context 200000" "$tmp/err" \
    && ok "a large run warns of its memory and time first" || fail "large-run warning: $(cat "$tmp/err")"
else
  echo "# SKIP the large-run warning: no timeout(1)"
fi
model=${KVR_TEST_MODEL:-$top_srcdir/../shared/models/stories260K.bin}
if [ -r "$model" ]; then
  expect 0 "model --csv -" -- eval --workload "model:$model" --context 64 --decode 4 --method full,h2o --budget 0.5 --seeds 2 --csv -
  head -n 1 "$tmp/out" | grep -q '^workload,context,budget,method,seeds,' && ok "model: CSV on stdout" || fail "model: no CSV on stdout"
  [ "$(grep -c . "$tmp/out")" -eq 3 ] && ok "model: full once and h2o" || fail "model rows: $(cat "$tmp/out")"
  [ "$(col seeds "$tmp/out" | sort -u)" = 2 ] && ok "model: --seeds 2 averaged" || fail "model seeds: $(col seeds "$tmp/out")"
  [ -n "$(col top1_agree "$tmp/out" | sed -n 2p)" ] && [ -z "$(col attn_rel_err "$tmp/out" | sed -n 2p)" ] \
    && ok "model rows: top1_agree filled, attn_rel_err empty" || fail "model row cells"
  [ -e "$tmp/-" ] && fail "model: a file named '-' was written" || ok "model: no file named '-'"
  "$kvr" eval --workload "model:$model" --context 64 --decode 4 --method full,h2o --budget 0.5 >"$tmp/out" 2>/dev/null
  [ "$(awk '$1 ~ /^[0-9.]+$/ && NF == 8 && $7 !~ /\./ { print }' "$tmp/out")" = "" ] \
    && grep -q "^1  *full  *1  *1.0000  *1.0000  *1.0000  *0.000 " "$tmp/out" && ok "model kl: 4 digits, 0 as 0.000" \
    || fail "model table format: $(cat "$tmp/out")"
  expect 0 "model --elem f16" -- eval --workload "model:$model" --context 64 --decode 4 --method h2o --budget 0.5 --elem f16 --csv -
  [ "$(col elem "$tmp/out" | sed -n 1p)" = f16 ] && ok "model: elem f16 in the CSV" || fail "model elem"
  expect 2 "model context above trained" -- eval --workload "model:$model" --context 100000
  grep -q "trained context of 512" "$tmp/err" && ok "names the trained context" || fail "trained context: $(cat "$tmp/err")"
  expect 2 "model without tokenizer and --text" -- eval --workload "model:$model" --context 64 --text "$top_srcdir/NEWS"
  grep -q "no tokenizer" "$tmp/err" && ok "says the model has no tokenizer" || fail "tokenizer: $(cat "$tmp/err")"
  expect 2 "model --passkey without tokenizer" -- eval --workload "model:$model" --context 64 --passkey 2
  # issue 29: a cell that fails is marked, and the table says the run stopped
  KVR_TEST_FAIL_CELL=h2o:1 "$kvr" eval --workload "model:$model" --context 64 --decode 4 --seeds 2 \
    --method h2o,tova --budget 0.5 >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ "$rc" -eq 1 ] && grep -q "^0.5 *h2o *1 FAILED (see above)" "$tmp/out" && grep -q "^(incomplete: " "$tmp/out" \
    && grep -q "injected by KVR_TEST_FAIL_CELL" "$tmp/err" && ok "a failed cell is marked FAILED, the table incomplete" \
    || fail "failed cell (exit $rc): $(cat "$tmp/out" "$tmp/err")"
  # the same numbers on one thread and on two
  "$kvr" eval --workload "model:$model" --context 96 --decode 8 --budget 0.25 --threads 1 --csv "$tmp/t1.csv" >/dev/null 2>&1
  "$kvr" eval --workload "model:$model" --context 96 --decode 8 --budget 0.25 --threads 2 --csv "$tmp/t2.csv" >/dev/null 2>&1
  cmp -s "$tmp/t1.csv" "$tmp/t2.csv" && [ -s "$tmp/t1.csv" ] && ok "model: one thread and two give the same CSV" \
    || fail "threads change the results"
else
  echo "# SKIP model workload: $model is absent (set KVR_TEST_MODEL)"
fi
# --late-question: usage errors, and with a GGUF model (KVR_TEST_GGUF, or
# scripts/fetch-smollm2.sh's) the full cache answers every trial both ways
expect 2 "--late-question on needle" -- eval --workload needle --late-question
expect 2 "--late-question with the forced comparison" -- eval --workload "model:$tmp/none" --passkey 2 --late-question
grep -q -- "--late-question needs --forced 0" "$tmp/err" && ok "says why" || fail "--late-question message: $(cat "$tmp/err")"
gguf=${KVR_TEST_GGUF:-}
[ -n "$gguf" ] || for f in "${KVR_MODELS:-$HOME/.cache/kvreviver}"/*.gguf; do [ -f "$f" ] && gguf=$f && break; done
gguf=${gguf%% *}
if [ -n "$gguf" ] && [ -r "$gguf" ]; then
  for late in "" --late-question; do
    expect 0 "passkey ${late:-early} on $(basename "$gguf")" -- eval --workload "model:$gguf" --context 256 --passkey 2 \
      --forced 0 --method full --budget 0.5 $late --csv -
    [ "$(col passkey_acc "$tmp/out" | sed -n 1p)" = 1 ] && ok "full answers both trials ${late:-early}" \
      || fail "full passkey ${late:-early}: $(cat "$tmp/out")"
  done
  [ "$(col workload "$tmp/out" | sed -n 1p)" = "model:$(basename "$gguf")+late" ] && ok "late rows are model:NAME+late" \
    || fail "late workload: $(col workload "$tmp/out")"
  # issue 29: a context too short for the passkey prompt is one usage error
  # naming the minimum, before anything runs
  for c in 64 128; do
    expect 2 "passkey at --context $c" -- eval --workload "model:$gguf" --context $c --passkey 2 --method h2o --budget 0.5
    grep -q -- "--passkey needs --context of at least [0-9]* positions" "$tmp/err" && [ ! -s "$tmp/out" ] \
      && ok "passkey at $c names the minimum, runs nothing" || fail "passkey at $c: $(cat "$tmp/out" "$tmp/err")"
  done
  expect 2 "--text DIR" -- eval --workload "model:$gguf" --context 64 --text "$tmp"
  grep -q -- "--text $tmp is a directory" "$tmp/err" && ok "--text DIR says it is a directory" || fail "--text DIR: $(cat "$tmp/err")"
  expect 2 "one window too many" -- eval --workload "model:$gguf" --context 4096 --text "$top_srcdir/README.md"
  grep -q "1 window of 4096 needs 4097 tokens" "$tmp/err" && ok "1 window ... needs" || fail "window grammar: $(cat "$tmp/err")"
else
  echo "# SKIP passkey with a GGUF model: none found (set KVR_TEST_GGUF, or run scripts/fetch-smollm2.sh)"
fi
cd - >/dev/null || exit 99

echo "1..$n"
[ $fails -eq 0 ]
