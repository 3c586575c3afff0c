"""test_vectors.py: the binding, run as a port (vectors_port.py), passes
`kvreviver validate` on the conformance vectors, and a wrong output fails it."""

import os
import re
import subprocess

import numpy as np
import pytest

import vectors_port


def validate(tool, vec, port):
    r = subprocess.run([tool, "validate", "--vectors", vec, "--port", port], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def ported(tool, vectors, tmp_path_factory):
    base = tmp_path_factory.mktemp("vectors")
    port, vec = str(base / "port"), str(base / "vectors")
    skipped = vectors_port.run(vectors, port)
    vectors_port.filtered_vectors(vectors, vec)
    return tool, vec, port, skipped


def test_binding_validates(ported, vectors):
    tool, vec, port, skipped = ported
    rc, out = validate(tool, vec, port)
    assert rc == 0, out
    _, arrays = vectors_port.read_manifest(vectors)
    expected = [rel for rel, _, _, _, _ in arrays if rel.startswith("expected/")]
    # every expected array but the sketch's inside (level 5) was judged, and passed
    assert skipped and all("sketch_" in s or "running_sums" in s for s in skipped)
    want = len(expected) - len(skipped)
    assert re.search(r"^validate: %d passed, 0 failed$" % want, out, re.M), out
    for level in (1, 2, 3, 4, 6, 7):
        assert re.search(r"^level %d .*: [1-9][0-9]* passed, 0 failed$" % level, out, re.M), out
    # the same library runs the scripts, so the floats are the reference's own bits
    for line in out.splitlines():
        if line.startswith("PASS") and "tolerance" in line:
            assert " 0.0% of tolerance" in line, line


def _copy_port(port, dst):
    subprocess.run(["cp", "-R", port, dst], check=True)
    return dst


def test_a_wrong_attention_output_fails(ported, tmp_path):
    tool, vec, port, _ = ported
    bad = _copy_port(port, str(tmp_path / "bad"))
    path = os.path.join(bad, "tier_default", "attend.npy")
    a = np.load(path)
    a[3, 1, 5] += 1e-3                                                # far beyond its float32 tolerance
    np.save(path, a)
    rc, out = validate(tool, vec, bad)
    assert rc == 1 and re.search(r"^FAIL tier_default/attend.npy: 1 of \d+ elements differ", out, re.M), out
    assert "level 7" in out and "<- the first level that fails" in out


def test_a_wrong_partition_fails(ported, tmp_path):
    tool, vec, port, _ = ported
    bad = _copy_port(port, str(tmp_path / "bad"))
    path = os.path.join(bad, "prefill_ties", "parts.npy")
    p = np.load(path)
    p[0, 1, 10] = 3 if p[0, 1, 10] != 3 else 2
    np.save(path, p)
    rc, out = validate(tool, vec, bad)
    assert rc == 1 and "FAIL prefill_ties/parts.npy" in out and "must be exact" in out, out
