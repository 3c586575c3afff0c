"""test_errors.py: bad input is refused clearly, and a failed call changes nothing."""

import numpy as np
import pytest

import kvreviver as kvr

H, HQ, D = 2, 4, 16


@pytest.fixture
def cache():
    rng = np.random.default_rng(0)
    c = kvr.Cache("kvreviver", 0.5, 64, H, HQ, D)
    c.prefill(rng.standard_normal((40, H, D)).astype(np.float32), rng.standard_normal((40, H, D)).astype(np.float32),
              rng.standard_normal((8, HQ, D)).astype(np.float32))
    yield c
    c.close()


def kv(n=2, value=0.5, dtype=np.float32):
    return np.full((n, H, D), value, dtype=dtype), np.full((n, H, D), value, dtype=dtype)


def test_wrong_dtype_is_a_type_error(cache):
    k, v = kv(dtype=np.float64)
    with pytest.raises(TypeError, match="dtype <f8.*astype"):
        cache.append(k, v)
    with pytest.raises(TypeError, match="ndarray"):
        cache.append([[[0.0] * D] * H], [[[0.0] * D] * H])
    with pytest.raises(TypeError):
        cache.attend(np.zeros((HQ, D), dtype=">f4"))                    # float32, but big-endian
    with pytest.raises(TypeError):
        cache.attend(np.zeros((HQ, D), dtype=np.float16))


def test_wrong_shape_is_a_value_error(cache):
    k, v = kv()
    with pytest.raises(ValueError, match=r"k has shape \[2, 2, 8\], expected \[n\]\[2\]\[16\]"):
        cache.append(k[:, :, :8].copy(), v[:, :, :8].copy())
    with pytest.raises(ValueError, match=r"v has shape \[1, 2, 16\], expected \[2\]\[2\]\[16\]"):
        cache.append(k, v[:1].copy())
    with pytest.raises(ValueError, match="expected"):
        cache.attend(np.zeros((H, D), dtype=np.float32))                # kv_heads rows, not q_heads
    with pytest.raises(ValueError):
        cache.attend(np.zeros(HQ * D, dtype=np.float32))
    with pytest.raises(ValueError):
        cache.attend(np.zeros((HQ, D), dtype=np.float32), out=np.zeros((HQ, D + 1), dtype=np.float32))


def test_non_contiguous_is_a_value_error(cache):
    big = np.zeros((2, H, 2 * D), dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        cache.append(big[:, :, ::2], big[:, :, ::2])
    qt = np.zeros((D, HQ), dtype=np.float32).T                         # a transpose
    with pytest.raises(ValueError, match="C-contiguous"):
        cache.attend(qt)
    out = np.zeros((HQ, D), dtype=np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cache.attend(np.zeros((HQ, D), dtype=np.float32), out=out)


def test_nan_and_inf_raise_error_and_change_nothing(cache):
    state, length = cache.to_bytes(), cache.length()
    k, v = kv()
    k[1, 1, 3] = np.nan
    with pytest.raises(kvr.Error) as e:
        cache.append(k, v)
    assert e.value.status == kvr.ENONFINITE and e.value.name == "KVR_ENONFINITE"
    assert "NaN" in e.value.message and str(e.value).startswith("KVR_ENONFINITE: ")
    assert cache.to_bytes() == state and cache.length() == length    # the cache is unchanged
    q = np.zeros((HQ, D), dtype=np.float32)
    q[2, 0] = np.inf
    out = np.full((HQ, D), 7.0, dtype=np.float32)
    with pytest.raises(kvr.Error, match="KVR_ENONFINITE"):
        cache.attend(q, out=out)
    assert (out == 7.0).all() and cache.to_bytes() == state            # out and scores unchanged


def test_out_of_range_for_the_storage_type(cache):
    state = cache.to_bytes()
    k, v = kv(value=1e6)                                               # above float16's 65504
    with pytest.raises(kvr.Error) as e:
        cache.append(k, v)
    assert e.value.name == "KVR_ERANGE" and cache.to_bytes() == state


def test_prefill_into_a_filled_layer(cache):
    state = cache.to_bytes()
    k, v = kv(n=4)
    with pytest.raises(kvr.Error, match="KVR_ESTATE"):
        cache.prefill(k, v, np.zeros((2, HQ, D), dtype=np.float32))
    assert cache.to_bytes() == state


def test_bad_positions_and_layers(cache):
    for call in (lambda: cache.reconstruct(40), lambda: cache.reconstruct(-1), lambda: cache.part(0, kv_head=H),
                 lambda: cache.parts(layer=1), lambda: cache.append(*kv(), layer=5)):
        with pytest.raises(kvr.Error) as e:
            call()
        assert e.value.status == kvr.EINVAL and e.value.message
    with pytest.raises(TypeError):
        cache.reconstruct(1.5)


def test_closed_cache():
    c = kvr.Cache("h2o", 0.5, 64, H, HQ, D)
    c.close()
    c.close()                                                          # twice is harmless
    assert c.closed and "closed" in repr(c)
    k, v = kv()
    for call in (lambda: c.append(k, v), lambda: c.prefill(k, v), lambda: c.attend(np.zeros((HQ, D), np.float32)),
                 lambda: c.reconstruct(0), lambda: c.parts(), lambda: c.bytes_held(), lambda: c.save("/tmp/x"),
                 lambda: c.to_bytes(), lambda: c.plan(), lambda: c.length()):
        with pytest.raises(ValueError, match="closed"):
            call()
    with kvr.Cache("h2o", 0.5, 64, H, HQ, D) as c2:
        pass
    assert c2.closed


def test_bad_methods_budgets_and_backends():
    with pytest.raises(kvr.Error) as e:
        kvr.Cache("no-such-method", 0.5, 64, H, HQ, D)
    assert e.value.name == "KVR_EINVAL" and "no-such-method" in e.value.message
    with pytest.raises(kvr.Error, match="KVR_EINVAL"):
        kvr.Cache("h2o/bits=3", 0.5, 64, H, HQ, D)                     # a lever h2o does not take
    with pytest.raises(kvr.Error) as e:
        kvr.Cache("kvreviver", 0.001, 64, H, HQ, D)
    assert e.value.status == kvr.EBUDGET
    with pytest.raises(kvr.Error, match="KVR_EINVAL"):
        kvr.Cache("h2o", 0.5, 64, H, 3, D)                             # q_heads not a multiple of kv_heads
    with pytest.raises(kvr.Error, match="KVR_EINVAL"):
        kvr.Cache("h2o", 0.5, 64, H, HQ, D, elem="f8")
    with pytest.raises(ValueError, match="backend"):
        kvr.Cache("h2o", 0.5, 64, H, HQ, D, backend="gpu")
    if not kvr.backend_available("cuda"):
        with pytest.raises(kvr.Error) as e:
            kvr.Cache("kvreviver-moment", 0.5, 64, H, HQ, D, backend="cuda")
        assert e.value.status == kvr.EBACKEND
    with pytest.raises(TypeError):
        kvr.Cache(3, 0.5, 64, H, HQ, D)
    with pytest.raises(TypeError):
        kvr.Cache.from_config({"sinks": 4}, H, HQ, D)
    cfg = kvr.Config.default()                                         # unplanned: window 0
    with pytest.raises(kvr.Error, match="KVR_EINVAL.*no plan"):
        kvr.Cache.from_config(cfg, H, HQ, D)
    with pytest.raises(kvr.Error, match="KVR_EINVAL.*window"):
        kvr.check_config(cfg, D)
