"""toy_attention.py: two attention heads in NumPy, full against compressed.

A context of 1024 tokens for 2 KV heads (one query head each) whose keys
have a sink, a few heavy hitters and a slowly drifting content part; the
last 8 positions are decoded one at a time.  Each step compares
kvreviver.Cache.attend() at a 10% memory budget with full softmax attention
over the same float16 keys and values, per head, for three methods.
"""

import numpy as np

import kvreviver as kvr

N, DECODE, H, D = 1024, 8, 2, 64
rng = np.random.default_rng(7)

# keys: [N][H][D] = per-head offset + drifting content + noise, a sink at 0, heavy hitters
drift = np.cumsum(rng.standard_normal((N, H, D)), axis=0) / np.sqrt(np.arange(1, N + 1))[:, None, None]
k = (rng.standard_normal((1, H, D)) + 2 * drift + 0.5 * rng.standard_normal((N, H, D))).astype(np.float32)
heavy = rng.choice(np.arange(1, N), size=20, replace=False)
k[0] += 3.0
k[heavy] += 2.0
v = rng.standard_normal((N, H, D)).astype(np.float32)
# queries: [N][H][D] look at their own content, at the sink and the heavy hitters
q = (0.5 * k + 0.3 * rng.standard_normal((N, H, D))).astype(np.float32)

# the full cache stores float16: compare with attention over what it holds
k16, v16 = k.astype(np.float16).astype(np.float32), v.astype(np.float16).astype(np.float32)


def full_attention(qt, kt, vt):
    """Softmax attention of each head.  qt: [H][D], kt, vt: [n][H][D] -> [H][D]."""
    logits = np.einsum("hd,nhd->hn", qt.astype(np.float64), kt.astype(np.float64)) / np.sqrt(D)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.einsum("hn,nhd->hd", p, vt.astype(np.float64))


n_pre = N - DECODE
for method in ("kvreviver", "h2o", "streaming"):
    with kvr.Cache(method, budget=0.1, context=N, kv_heads=H, q_heads=H, head_dim=D, elem="f16") as c:
        c.prefill(k[:n_pre], v[:n_pre], q[n_pre - 32:n_pre])   # the last 32 prompt queries score importance
        err = np.zeros(H)
        for t in range(n_pre, N):
            c.append(k[t:t + 1], v[t:t + 1])
            out = c.attend(q[t])                               # [H][D]
            ref = full_attention(q[t], k16[:t + 1], v16[:t + 1])
            err += np.linalg.norm(out - ref, axis=1) / np.linalg.norm(ref, axis=1) / DECODE
        print("%-9s bytes %.3f of full; relative error per head %s; %s" % (
            method, c.bytes_held() / c.bytes_full(), np.array2string(err, precision=4), c.plan()))
        if method == "kvreviver":
            parts = c.parts()                                  # [H][N]
            counts = {kvr.PART_NAMES[p]: int((parts[0] == p).sum()) for p in range(6) if (parts[0] == p).any()}
            print("          head 0 holds its %d positions as %s" % (N, counts))
