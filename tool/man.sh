#!/bin/sh
# man.sh: make the kvreviver(1) man page from the tool's own help (the GNU
# convention: help2man), so that --help, the man page and the messages
# cannot drift apart.  The page is help2man's reading of `kvreviver --help`
# and `--version`, the hand-written sections of tool/kvreviver.h2m (name,
# examples, see also), and a COMMANDS section that holds every command's
# --help verbatim.
#
#   tool/man.sh HELP2MAN PROGRAM INCLUDE OUTPUT
#
# Exit 0 with OUTPUT written; on failure OUTPUT is left as it was and the
# status is not 0.  Builds without help2man use the committed copy of the
# page (tool/kvreviver.1) instead.
set -eu
h2m=$1 prog=$2 include=$3 out=$4
tmp=$(mktemp "${TMPDIR:-/tmp}/kvr-man.XXXXXX") || exit 1
trap 'rm -f "$tmp" "$tmp.1"' EXIT

# roff-safe verbatim text: backslashes as \e, minus signs as \-, and a
# line starting with a control character guarded by \&
verbatim() {
  printf '.nf\n'
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e 's/§/\\(sc/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
  printf '.fi\n'
}

cat "$include" >"$tmp"
printf '\n[COMMANDS]\n' >>"$tmp"
for cmd in demo eval "eval --workload model:PATH" vectors validate bench keys; do
  printf '.SS "kvreviver %s"\n' "$cmd" >>"$tmp"
  case $cmd in
    "eval --workload model:PATH") "$prog" eval --workload model:PATH --help ;;
    *) "$prog" $cmd --help ;;
  esac | verbatim >>"$tmp"
done

"$h2m" --no-info --section=1 --source="kvreviver" \
  --name="reversible KV-cache compression: demo, evaluation and conformance tools" \
  --include="$tmp" --output="$tmp.1" "$prog"
mv "$tmp.1" "$out"
