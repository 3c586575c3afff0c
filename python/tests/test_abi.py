"""test_abi.py: kvreviver.Config is laid out as kvr_config is in the header.

Compiles a small C program with the header (CC, else cc) that prints
sizeof(kvr_config) and the offset of every field, and compares them with the
ctypes structure.  Skipped without a C compiler."""

import ctypes
import os
import shutil
import subprocess

import pytest

import kvreviver as kvr


def test_config_layout_matches_the_header(header, tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to read lib/kvreviver.h with")
    fields = [name for name, _ in kvr.Config._fields_]
    src = tmp_path / "layout.c"
    src.write_text('#include <stddef.h>\n#include <stdio.h>\n#include "kvreviver.h"\nint main(void) {\n'
                   '    printf("size %zu\\n", sizeof(kvr_config));\n'
                   + "".join('    printf("%s %%zu %%zu\\n", offsetof(kvr_config, %s), sizeof(((kvr_config *)0)->%s));\n'
                             % (f, f, f) for f in fields)
                   + "    return 0;\n}\n")
    exe = tmp_path / "layout"
    subprocess.run(cc.split() + ["-I", os.path.dirname(header), str(src), "-o", str(exe)], check=True)
    got = dict((w[0], tuple(int(x) for x in w[1:])) for w in
               (line.split() for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                          check=True).stdout.splitlines()))
    assert got.pop("size") == (ctypes.sizeof(kvr.Config),)
    for f in fields:
        assert got[f] == (getattr(kvr.Config, f).offset, getattr(kvr.Config, f).size), f
    # and the header has no field the structure lacks: the sizes already agree, so a
    # new field would have to be hidden in padding; count the declarations too
    text = open(header).read()
    body = text[text.index("typedef struct {", text.index("kvr_pool;")):text.index("} kvr_config;")]
    declared = [line.split(";")[0].split()[-1] for line in body.splitlines()
                if ";" in line and not line.strip().startswith(("/*", "*"))]
    assert declared == fields
