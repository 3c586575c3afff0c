#!/bin/sh
# cpu-eval.sh: kvreviver eval --backend cpu gives the reference's table
# (issue 25): on the synthetic workload (and on stories260K when
# /work/shared/models/stories260K.bin or $KVR_STORIES260K is there), every
# column decided by integers and decisions (bytes held, exact share,
# needle and next-token agreement counts) is the same, since the parts are
# decided the same way; the float metrics (attn_rel_err, mass_exact, kl,
# ppl) are functions of outputs that tests/cpu checks element by element
# against kvr_tol_attend, and are printed side by side here.
set -u
tool="$top_builddir/tool/kvreviver"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-cpueval.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# columns: 11 bytes_ratio 12 exact_ratio 15 needle_acc 18 top1_agree 25 bytes_held
compare() {   # $1: label; then eval's arguments
    label=$1; shift
    "$tool" eval "$@" --csv "$tmp/ref.csv" >/dev/null || fail "$label: eval --backend ref exited $?"
    "$tool" eval --backend cpu "$@" --csv "$tmp/cpu.csv" >/dev/null || fail "$label: eval --backend cpu exited $?"
    cut -d, -f1-12,15,18,25 "$tmp/ref.csv" >"$tmp/a"
    cut -d, -f1-12,15,18,25 "$tmp/cpu.csv" >"$tmp/b"
    diff "$tmp/a" "$tmp/b" || fail "$label: the decided columns differ between ref and cpu"
    paste -d, "$tmp/ref.csv" "$tmp/cpu.csv" | awk -F, -v l="$label" 'NR > 1 {
        printf "%s %-18s %5s: attn_rel_err %s / %s, mass_exact %s / %s, kl %s / %s (ref / cpu)\n",
               l, $4, $3, $13, $38, $14, $39, $19, $44 }'
}
compare synthetic --context 1024 --method kvreviver,kvreviver-moment,full,h2o,tova --budget 0.1,0.25
compare needle --workload needle --context 1024 --method kvreviver,h2o --budget 0.1
model=${KVR_STORIES260K:-/work/shared/models/stories260K.bin}
if [ -f "$model" ]; then
    compare stories260K --workload "model:$model" --context 256 --method kvreviver,h2o --budget 0.25 --threads 1
else
    echo "stories260K not found at $model: its comparison skipped"
fi
echo "PASS: eval --backend cpu gives the reference's decided columns"
