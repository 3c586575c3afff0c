"""test_api.py: every call of the binding does what the C interface says."""

import ctypes
import os

import numpy as np
import pytest

import kvreviver as kvr

H, HQ, D, N = 2, 4, 32, 300


def data(n=N, h=H, hq=HQ, d=D, seed=0):
    """k, v: [n][h][d], q: [n][hq][d] float32, keys with a little structure."""
    rng = np.random.default_rng(seed)
    k = (rng.standard_normal((n, h, d)) + np.linspace(0, 2, n)[:, None, None]).astype(np.float32)
    v = rng.standard_normal((n, h, d)).astype(np.float32)
    q = rng.standard_normal((n, hq, d)).astype(np.float32)
    return k, v, q


def full_attention(q, k, v, group):
    """q: [hq][d], k, v: [n][h][d] -> [hq][d] float64, query head i on KV head i // group."""
    out = np.empty(q.shape)
    for i in range(q.shape[0]):
        kk, vv = k[:, i // group].astype(np.float64), v[:, i // group].astype(np.float64)
        s = kk @ q[i].astype(np.float64) / np.sqrt(q.shape[1])
        p = np.exp(s - s.max())
        out[i] = (p / p.sum()) @ vv
    return out


def test_library_is_the_one_asked_for():
    assert kvr.version() == kvr.__version__
    want = os.environ.get("KVREVIVER_LIB_EXPECT")          # set by python/check.sh: the build tree's
    if want:
        assert os.path.realpath(kvr.library_path).startswith(os.path.realpath(want)), kvr.library_path
    assert os.path.exists(kvr.library_path) or kvr.library_found_by == "the dynamic loader"
    pkg = os.environ.get("KVREVIVER_PACKAGE_EXPECT")      # and the source tree's package
    if pkg:
        assert os.path.dirname(os.path.realpath(kvr.__file__)) == os.path.realpath(pkg), kvr.__file__


def test_methods_and_configs():
    names = kvr.methods()
    assert {"full", "h2o", "kvreviver", "kvreviver-paper"} <= set(names)
    for m in names:
        cfg = kvr.method_config(m, 0.5 if m != "full" else 1.0, 1024, 64, "f16")
        assert cfg.elem == 1 and cfg.window >= 1
        kvr.check_config(cfg, 64)
    # levers as `kvreviver eval --method` takes them
    cfg = kvr.method_config("kvreviver/bits=2/tier=0.75", 0.25, 1024, 64, "f32")
    assert cfg.tier_bits == 2 and cfg.tier_share == 0.75 and cfg.elem == 0
    assert kvr.method_config("h2o/store=q4", 0.25, 1024, 64).store == 2
    kivi = kvr.method_config("kivi/bits=3", 0.25, 1024, 64)
    assert kivi.kivi_bits == 3 and kivi.kivi_tokens == 1024 - kivi.sinks - kivi.window


def test_config_default_paper_plan():
    d, p = kvr.Config.default(), kvr.Config.paper()
    assert (d.sinks, d.depth, d.obs_window, d.vague, d.tier_bits) == (4, 1, 32, 1, 0)
    assert p.vague == 0 and p.depth == 3 and p.importance == 2
    planned = kvr.plan(0.25, 2048, 64, p)
    assert p.window == 0 and planned.window > 0                # the input is not changed
    assert kvr.head_bytes(planned, 64) <= 0.25 * kvr.full_bytes(2048, 64, p.elem)
    assert planned == planned.copy() and planned != p
    assert kvr.full_bytes(10, 8, "f32") == 2 * 10 * 8 * 4 and kvr.elem_size("bf16") == 2


def test_plan_of_a_cache():
    with kvr.Cache("kvreviver", 0.25, 1024, H, HQ, 64) as c:
        p = c.plan()
        cfg = c.config
        assert (p.sinks, p.window, p.candidates, p.tier_tokens, p.depth, p.width) == \
               (cfg.sinks, cfg.window, cfg.candidates, cfg.tier_tokens, cfg.depth, cfg.width)
        assert p.tier_bits == 4 and p.elem == "f16"
        assert p.full_head_bytes == kvr.full_bytes(1024, 64, "f16")
        assert 0.2 < p.head_bytes / p.full_head_bytes <= 0.25
        assert "tier" in repr(p) and "sketch" in repr(p)
        assert p.as_dict()["head_bytes"] == kvr.head_bytes(cfg, 64)
        assert repr(c) == ("<kvreviver.Cache kvreviver at 0.25, 1 layer(s) x 2 kv heads, 4 q heads, "
                           "head_dim 64, lengths [0]>")


def test_full_method_is_full_attention():
    k, v, q = data()
    with kvr.Cache("full", 1.0, N, H, HQ, D, elem="f32") as c:
        c.prefill(k[:200], v[:200], q[168:200])
        c.append(k[200:], v[200:])
        assert c.length() == N
        out = c.attend(q[-1])
        assert out.shape == (HQ, D) and out.dtype == np.float32
        np.testing.assert_allclose(out, full_attention(q[-1], k, v, HQ // H), rtol=0, atol=2e-5)
        assert (c.parts() != kvr.PART_VAGUE).all() and (c.parts() != kvr.PART_DROPPED).all()
        assert c.bytes_held() >= c.bytes_full()


def decode_error(method, budget, seed=1):
    """Mean relative error of the last step's attention against full
    attention, per query head ([HQ]), and the bytes held over the full cache's."""
    k, v, q = data(seed=seed)
    with kvr.Cache(method, budget, N, H, HQ, D, elem="f32") as c:
        c.prefill(k[:N - 4], v[:N - 4], q[N - 36:N - 4])
        c.append(k[N - 4:], v[N - 4:])
        out = c.attend(q[-1])
        ref = full_attention(q[-1], k, v, HQ // H)
        return np.linalg.norm(out - ref, axis=1) / np.linalg.norm(ref, axis=1), c.bytes_held() / c.bytes_full()


def test_compressed_attention_within_budget_and_ahead_of_eviction():
    errs = {}
    for budget in (0.1, 0.25, 0.5):
        for m in ("kvreviver", "h2o", "streaming"):
            err, ratio = decode_error(m, budget)
            assert ratio <= budget and np.isfinite(err).all()
            errs[m, budget] = err.mean()
    for budget in (0.1, 0.25, 0.5):          # what the sketch and the tier buy at equal bytes
        assert errs["kvreviver", budget] < min(errs["h2o", budget], errs["streaming", budget]), errs
    assert errs["kvreviver", 0.1] > errs["kvreviver", 0.25] > errs["kvreviver", 0.5], errs


def test_attend_out_argument_and_peek():
    k, v, q = data(seed=2)
    with kvr.Cache("h2o", 0.5, N, H, HQ, D, elem="f32") as c:
        c.prefill(k, v, q[-32:])
        pos = [t for t in range(N) if c.part(t) == kvr.PART_CANDIDATE][0]
        before, state = c.score(pos), c.to_bytes()
        out = np.zeros((HQ, D), dtype=np.float32)
        assert c.attend(q[0], peek=True, out=out) is out
        assert c.score(pos) == before and c.to_bytes() == state       # peek: scores as they were
        again = c.attend(q[0])                                        # scores updated
        np.testing.assert_array_equal(out, again)
        assert c.score(pos) > before and c.to_bytes() != state


def test_reconstruct_parts_and_dropped():
    k, v, q = data(seed=3)
    with kvr.Cache("h2o", 0.25, N, H, HQ, D, elem="f16") as c:
        c.prefill(k, v, q[-32:])
        parts = c.parts()
        assert parts.shape == (H, N) and parts.dtype == np.int32
        cfg = c.config
        for h in range(H):
            counts = np.bincount(parts[h], minlength=6)
            assert counts[kvr.PART_SINK] == cfg.sinks and counts[kvr.PART_RECENT] == cfg.window
            assert counts[kvr.PART_CANDIDATE] == cfg.candidates
            assert counts[kvr.PART_DROPPED] == N - cfg.sinks - cfg.window - cfg.candidates
            assert (parts[h, :cfg.sinks] == kvr.PART_SINK).all() and (parts[h, -cfg.window:] == kvr.PART_RECENT).all()
        assert [c.part(t, 1) for t in range(N)] == parts[1].tolist()
        kk, vv = c.reconstruct(N - 1, kv_head=1)                      # exact: the stored float16 values
        np.testing.assert_array_equal(kk, k[N - 1, 1].astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(vv, v[N - 1, 1].astype(np.float16).astype(np.float32))
        dropped = int(np.flatnonzero(parts[0] == kvr.PART_DROPPED)[0])
        with pytest.raises(kvr.Error) as e:
            c.reconstruct(dropped)
        assert e.value.name == "KVR_EDROPPED" and e.value.status == kvr.EDROPPED


def test_vague_reconstruction_from_a_wide_sketch_is_the_key():
    # a sketch far wider than the vague set: most tokens have a bucket to
    # themselves in at least two of the three rows, and the median row
    # estimate (spec 8.2) gives them back to float32 rounding
    k, v, q = data(seed=4)
    cfg = kvr.Config.paper()
    cfg.sinks, cfg.window, cfg.candidates, cfg.depth, cfg.width = 4, 8, 8, 3, 8192
    with kvr.Cache.from_config(cfg, H, HQ, D) as c:
        c.prefill(k, v, q[-32:])
        vague = np.flatnonzero(c.parts()[1] == kvr.PART_VAGUE)
        assert vague.size == N - 20
        rk = np.array([c.reconstruct(int(t), kv_head=1)[0] for t in vague])     # [vague][D]
        rv = np.array([c.reconstruct(int(t), kv_head=1)[1] for t in vague])
        close_k = np.isclose(rk, k[vague, 1], rtol=1e-4, atol=1e-4).all(axis=1)
        close_v = np.isclose(rv, v[vague, 1], rtol=1e-4, atol=1e-4).all(axis=1)
        assert close_k.mean() > 0.95 and close_v.mean() > 0.95, (close_k.mean(), close_v.mean())
    cfg.width = 4                               # and a narrow one mixes them up
    with kvr.Cache.from_config(cfg, H, HQ, D) as c:
        c.prefill(k, v, q[-32:])
        rk = np.array([c.reconstruct(int(t), kv_head=1)[0] for t in vague])
        assert np.isclose(rk, k[vague, 1], rtol=1e-4, atol=1e-4).all(axis=1).mean() < 0.05


def test_layers_are_independent():
    k, v, q = data(seed=5)
    with kvr.Cache("kvreviver", 0.5, N, H, HQ, D, layers=3, elem="f32") as c:
        c.prefill(k, v, q[-32:], layer=2)
        assert [c.length(l) for l in range(3)] == [0, 0, N]
        with pytest.raises(kvr.Error, match="KVR_ESTATE"):
            c.attend(q[0], layer=0)                                   # layer 0 is empty
        c.attend(q[0], layer=2)
        with pytest.raises(kvr.Error) as e:
            c.length(3)
        assert e.value.status == kvr.EINVAL


def test_from_config_and_seed():
    cfg = kvr.plan(0.25, 512, D, kvr.Config.paper())
    with kvr.Cache.from_config(cfg, H, HQ, D, context=512) as c:
        assert c.config == cfg and c.plan().full_head_bytes == kvr.full_bytes(512, D, cfg.elem)
    with kvr.Cache("kvreviver", 0.25, 512, H, HQ, D, seed=12345) as c:
        assert c.config.seed == 12345


def test_hash_and_elem_round():
    h = kvr.hash(1, 0, 0, 0, 7)
    assert 0 <= h < 2 ** 64 and h != kvr.hash(1, 0, 0, 0, 8)
    assert kvr.hash_sign(h) in (-1, 1) and 0 <= kvr.hash_bucket(h, 13) < 13
    x = np.array([1.0, 1.0 + 2 ** -11, 1.0 + 3 * 2 ** -11, 65520.0, 1e-8], dtype=np.float32)
    # ties to even, overflow to inf, subnormals: [1, 1, 1 + 2^-9, inf, 1e-8 on float16's grid]
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(kvr.elem_round(x, "f16"), x.astype(np.float16).astype(np.float32))
    assert kvr.elem_round(x, "bf16")[1] == 1.0 and kvr.elem_round(x, "f32").tolist() == x.tolist()
    assert kvr.part_name(kvr.PART_VAGUE) == "vague" and kvr.PART_NAMES[kvr.PART_QUANTIZED] == "quantized"
    assert kvr.backend_available("ref")


def test_arrays_are_passed_without_a_copy():
    k = np.zeros((3, H, D), dtype=np.float32)
    p = kvr._f32("k", k, (None, H, D))
    assert ctypes.cast(p, ctypes.c_void_p).value == k.ctypes.data
    view = np.zeros((10, H, D), dtype=np.float32)[2:5]                # a contiguous view: its own data
    p = kvr._f32("k", view, (None, H, D))
    assert ctypes.cast(p, ctypes.c_void_p).value == view.ctypes.data


def test_cuda_backend_agrees_with_ref():
    # on a machine with a GPU and a CUDA build: the same partition, and
    # attention within float32 reordering of the reference's (doc/cuda.md)
    if not kvr.backend_available("cuda"):
        pytest.skip("no usable CUDA backend here (a build without nvcc, or no GPU)")
    k, v, q = data(seed=6, d=64)
    outs, parts = [], []
    for backend in ("ref", "cuda"):
        with kvr.Cache("kvreviver-moment", 0.25, N, H, HQ, 64, elem="f32", backend=backend) as c:
            c.prefill(k[:N - 4], v[:N - 4], q[N - 36:N - 4])
            c.append(k[N - 4:], v[N - 4:])
            outs.append(c.attend(q[-1]))
            parts.append(c.parts())
    np.testing.assert_array_equal(parts[0], parts[1])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-5)
