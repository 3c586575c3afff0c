#!/bin/sh
# vectors-numpy.sh: NumPy itself reads every array of the committed vectors
# with the dtype and shape the manifest states (issue 5, test d).  Skipped
# (77) without python3 and numpy.
set -u
vec="$top_srcdir/tests/vectors"
py="${PYTHON3:-python3}"
if ! "$py" -c 'import numpy' >/dev/null 2>&1; then
    echo "SKIP: no python3 with numpy ($py)"
    exit 77
fi
"$py" - "$vec" <<'PYEOF'
import os, sys
import numpy as np
root = sys.argv[1]
n = 0
with open(os.path.join(root, "MANIFEST")) as f:
    for line in f:
        if not line.startswith("array "):
            continue
        _, rel, dtype, shape, kind = line.split()[:5]
        a = np.load(os.path.join(root, rel), allow_pickle=False)
        want = () if shape == "scalar" else tuple(int(x) for x in shape.split("x"))
        assert a.dtype == np.dtype(dtype), (rel, a.dtype, dtype)
        assert a.shape == want, (rel, a.shape, want)
        assert a.flags["C_CONTIGUOUS"], rel
        if kind.startswith("tol:"):
            t = np.load(os.path.join(root, kind[4:]), allow_pickle=False)
            assert t.shape == a.shape and (t >= 0).all() and np.isfinite(t).all(), rel
        n += 1
print("PASS: numpy loaded %d arrays" % n)
PYEOF
