#!/bin/sh
# check.sh: the Python binding's pytest suite (python/tests) under make check
# (issue 26): the package from the source tree (PYTHONPATH), the library from
# the build tree (.libs, never an installed one), this build's tool and the
# committed vectors.  Skipped (77) without python3, NumPy or pytest, or
# without a shared library (--disable-shared), saying which.
set -u
py="${PYTHON3:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
    echo "SKIP: no python3 ($py)"
    exit 77
fi
for m in numpy pytest; do
    if ! "$py" -c "import $m" >/dev/null 2>&1; then
        echo "SKIP: $py has no $m (pip install numpy pytest)"
        exit 77
    fi
done
lib="$top_builddir/.libs"
if ! ls "$lib"/libkvreviver.so* "$lib"/libkvreviver*.dylib 2>/dev/null | grep -q .; then
    echo "SKIP: no shared libkvreviver in $lib (configured with --disable-shared?)"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvr-python.XXXXXX") || exit 99
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
KVREVIVER_LIB="$lib" KVREVIVER_LIB_EXPECT="$lib" KVREVIVER_PACKAGE_EXPECT="$top_srcdir/python/kvreviver"
KVREVIVER_TOOL="$top_builddir/tool/kvreviver" KVREVIVER_VECTORS="$top_srcdir/tests/vectors"
KVREVIVER_SRCDIR="$top_srcdir" KVREVIVER_BUILDDIR="$top_builddir"
PYTHONPATH="$top_srcdir/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
export KVREVIVER_LIB KVREVIVER_LIB_EXPECT KVREVIVER_PACKAGE_EXPECT KVREVIVER_TOOL KVREVIVER_VECTORS
export KVREVIVER_SRCDIR KVREVIVER_BUILDDIR PYTHONPATH PYTHONDONTWRITEBYTECODE
# nothing written into the source tree (read-only under make distcheck)
cd "$tmp" && "$py" -m pytest -q -rs -p no:cacheprovider --basetemp="$tmp/t" "$top_srcdir/python/tests"
