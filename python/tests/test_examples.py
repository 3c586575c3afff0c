"""test_examples.py: examples/toy_attention.py runs as doc/python.md prints it."""

import os
import re
import subprocess
import sys

import kvreviver

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def test_toy_attention():
    # the same kvreviver and library as this test's
    env = dict(os.environ, KVREVIVER_LIB=kvreviver.library_path,
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(kvreviver.__file__))]
                                          + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "toy_attention.py")], capture_output=True,
                         text=True, check=True, env=env).stdout
    err = {m.group(1): [float(x) for x in m.group(3).split()]
           for m in re.finditer(r"^(\S+)\s+bytes (\S+) of full; relative error per head \[([^\]]*)\]", out, re.M)}
    assert set(err) == {"kvreviver", "h2o", "streaming"}, out
    for m in ("h2o", "streaming"):                       # per head, at equal bytes
        assert all(a < b for a, b in zip(err["kvreviver"], err[m])), out
    for ratio in re.findall(r"bytes (\S+) of full", out):
        assert float(ratio) <= 0.1
    assert "head 0 holds its 1024 positions as" in out
