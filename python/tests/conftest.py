"""conftest.py: where the tests find the library, the tool and the vectors.

Run from a source tree (pytest python/tests, or make check through
python/check.sh), the library defaults to the tree's own build
(.libs/libkvreviver.so) when KVREVIVER_LIB is unset and it is built; the
tool (KVREVIVER_TOOL, else the tree's tool/kvreviver, else kvreviver on PATH),
the vectors (KVREVIVER_VECTORS, else the tree's tests/vectors) and the header
(KVREVIVER_SRCDIR/lib/kvreviver.h) likewise.  Tests that need one that is
missing are skipped, saying which."""

import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("KVREVIVER_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("KVREVIVER_BUILDDIR") or SRCDIR

if not os.environ.get("KVREVIVER_LIB") and os.path.isdir(os.path.join(BUILDDIR, ".libs")):
    os.environ["KVREVIVER_LIB"] = os.path.join(BUILDDIR, ".libs")
sys.path.insert(0, HERE)                                    # vectors_port
sys.path.insert(0, os.path.join(SRCDIR, "python", "examples"))


def _tool():
    t = os.environ.get("KVREVIVER_TOOL") or os.path.join(BUILDDIR, "tool", "kvreviver")
    return t if os.access(t, os.X_OK) else shutil.which("kvreviver")


@pytest.fixture(scope="session")
def tool():
    t = _tool()
    if not t:
        pytest.skip("no kvreviver tool (set KVREVIVER_TOOL, or build the tree)")
    return t


@pytest.fixture(scope="session")
def vectors():
    v = os.environ.get("KVREVIVER_VECTORS") or os.path.join(SRCDIR, "tests", "vectors")
    if not os.path.exists(os.path.join(v, "MANIFEST")):
        pytest.skip("no conformance vectors at %s (set KVREVIVER_VECTORS)" % v)
    return v


@pytest.fixture(scope="session")
def header():
    h = os.path.join(SRCDIR, "lib", "kvreviver.h")
    if not os.path.exists(h):
        pytest.skip("no lib/kvreviver.h at %s (set KVREVIVER_SRCDIR)" % SRCDIR)
    return h
