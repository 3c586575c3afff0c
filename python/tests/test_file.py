"""test_file.py: cache files (spec §16) round-trip bit for bit."""

import os

import numpy as np
import pytest

import kvreviver as kvr

H, HQ, D, N = 2, 4, 32, 200


def filled(method="kvreviver", elem="f16", layers=2, budget=0.25):
    rng = np.random.default_rng(11)
    c = kvr.Cache(method, budget, N, H, HQ, D, layers=layers, elem=elem)
    for layer in range(layers):
        k = rng.standard_normal((N, H, D)).astype(np.float32)
        v = rng.standard_normal((N, H, D)).astype(np.float32)
        c.prefill(k[:150], v[:150], rng.standard_normal((32, HQ, D)).astype(np.float32), layer=layer)
        c.append(k[150:], v[150:], layer=layer)
        c.attend(rng.standard_normal((HQ, D)).astype(np.float32), layer=layer)
    return c, rng.standard_normal((HQ, D)).astype(np.float32)


def reconstruct_or_dropped(c, t, h, layer):
    """(k, v) of a position, or "dropped"."""
    try:
        return c.reconstruct(t, h, layer)
    except kvr.Error as e:
        assert e.name == "KVR_EDROPPED"
        return "dropped"


@pytest.mark.parametrize("method,elem,budget", [("kvreviver", "f16", 0.25), ("kvreviver-paper", "f32", 0.25),
                                                ("h2o/store=q4", "bf16", 0.25), ("kivi/bits=3", "f16", 0.75)])
def test_save_load_round_trip(tmp_path, method, elem, budget):
    c, q = filled(method, elem, budget=budget)
    path = str(tmp_path / "cache.kvr")
    c.save(path)
    raw = open(path, "rb").read()
    assert raw == c.to_bytes() and not os.path.exists(path + ".tmp")
    with kvr.Cache.load(path) as d:
        assert d.to_bytes() == raw                                    # bit for bit, saved again
        assert d.config == c.config and (d.layers, d.kv_heads, d.q_heads, d.head_dim) == (2, H, HQ, D)
        assert [d.length(l) for l in range(2)] == [N, N] and d.bytes_held() == c.bytes_held()
        for layer in range(2):
            np.testing.assert_array_equal(d.parts(layer), c.parts(layer))
            np.testing.assert_array_equal(d.attend(q, layer, peek=True), c.attend(q, layer, peek=True))
            for t in range(0, N, 7):
                a, b = reconstruct_or_dropped(d, t, 1, layer), reconstruct_or_dropped(c, t, 1, layer)
                assert (a == "dropped") == (b == "dropped")
                if a != "dropped":
                    np.testing.assert_array_equal(a[0], b[0])
                    np.testing.assert_array_equal(a[1], b[1])
    with kvr.Cache.from_bytes(raw) as e:
        assert e.to_bytes() == raw
    c.close()


def test_bad_files(tmp_path):
    c, _ = filled()
    raw = bytearray(c.to_bytes())
    raw[len(raw) // 2] ^= 0x40                                        # a flipped bit in the payload
    with pytest.raises(kvr.Error) as e:
        kvr.Cache.from_bytes(raw)
    assert e.value.name == "KVR_EFORMAT"
    with pytest.raises(kvr.Error, match="KVR_EFORMAT"):
        kvr.Cache.from_bytes(bytes(raw[:100]))
    with pytest.raises(kvr.Error) as e:
        kvr.Cache.load(str(tmp_path / "missing.kvr"))
    assert e.value.name == "KVR_EIO" and "missing.kvr" in e.value.message
    bad = str(tmp_path / "no-such-dir" / "c.kvr")
    with pytest.raises(kvr.Error, match="KVR_EIO"):
        c.save(bad)
    assert not os.path.exists(bad) and not os.path.exists(bad + ".tmp")
    good = str(tmp_path / "c.kvr")                                    # a failed save leaves the old file whole
    c.save(good)
    before = open(good, "rb").read()
    os.chmod(str(tmp_path), 0o500)
    try:
        if os.access(str(tmp_path), os.W_OK):                         # root writes anyway: nothing to show
            pytest.skip("the directory stays writable (running as root)")
        with pytest.raises(kvr.Error, match="KVR_EIO"):
            c.save(good)
    finally:
        os.chmod(str(tmp_path), 0o700)
    assert open(good, "rb").read() == before
    with pytest.raises(TypeError):
        kvr.Cache.from_bytes("not bytes")
    c.close()
