"""eval_cell.py: one cell of `kvreviver eval` on the synthetic workload, in Python.

    python3 eval_cell.py [--method M] [--budget B] [--context N] [--decode N]
                         [--seed S] [--elem E]

prints the cell's CSV columns as `kvreviver eval --csv -` does for the same
options (synthetic workload, 2 KV heads, 4 query heads, head_dim 64).  Two
parts:

1. synthetic(): the synthetic workload of tool/harness/workload.c (doc/eval.md
   §2.1) drawn from the same generator, GSL's MT19937 seeded with the seed
   (NumPy's legacy RandomState seeds MT19937 the same way: init_genrand),
   read through GSL's gsl_rng_uniform (u32 / 2^32) and gsl_ran_gaussian (the
   polar Box-Muller method, one value per accepted pair), with every double
   operation in the order of the C source (sums left to right, logs from the
   C library through math.log), so the float32 arrays come out bit for bit.
2. run_cell(): the harness's loop (tool/harness/eval.c) through the binding:
   prefill, then each decode step append, attend and compare with full
   attention in float64; the metrics of doc/eval.md §3.
"""

import argparse
import math
import sys

import numpy as np

import kvreviver as kvr


class GslStream:
    """gsl_rng_mt19937 seeded with gsl_rng_set(r, seed): raw 32-bit outputs,
    gsl_rng_uniform and gsl_ran_gaussian, in the generator's order."""

    def __init__(self, seed):
        self._rs = np.random.RandomState(seed if seed % 2 ** 32 else 4357)   # GSL: seed 0 means 4357
        self._buf = np.empty(0, dtype=np.float64)
        self._at = 0

    def _peek(self, n):
        """The next n uniforms u32 / 2^32 ([n] float64), not consumed."""
        while self._buf.size - self._at < n:
            more = self._rs.randint(0, 2 ** 32, size=max(n, 65536), dtype=np.uint32)
            self._buf = np.concatenate([self._buf[self._at:], more / 4294967296.0])
            self._at = 0
        return self._buf[self._at:self._at + n]

    def uniform(self):
        """gsl_rng_uniform(r)."""
        u = self._peek(1)[0]
        self._at += 1
        return u

    def gaussian(self, sigma):
        """gsl_ran_gaussian(r, sigma) for each element of sigma ([n] float64): [n]."""
        sigma = np.asarray(sigma, dtype=np.float64)
        n = sigma.size
        out = np.empty(n)
        done = 0
        while done < n:
            need = n - done
            u = self._peek(2 * (need + need // 2 + 8))
            if not u.all():                 # a zero is refused by gsl_rng_uniform_pos: rare, done slowly
                return self._gaussian_slow(sigma, out, done)
            x, y = -1 + 2 * u[0::2], -1 + 2 * u[1::2]
            r2 = x * x + y * y
            ok = np.flatnonzero((r2 <= 1.0) & (r2 != 0))[:need]
            sel_y, sel_r2 = y[ok], r2[ok]
            logs = np.array([math.log(t) for t in sel_r2])     # the C library's log, as GSL calls it
            m = ok.size
            out[done:done + m] = sigma[done:done + m] * sel_y * np.sqrt(-2.0 * logs / sel_r2)
            self._at += 2 * (int(ok[-1]) + 1) if m == need else u.size
            done += m
        return out

    def _gaussian_slow(self, sigma, out, done):
        for i in range(done, sigma.size):
            while True:
                x = -1 + 2 * self._uniform_pos()
                y = -1 + 2 * self._uniform_pos()
                r2 = x * x + y * y
                if r2 <= 1.0 and r2 != 0:
                    break
            out[i] = sigma[i] * y * math.sqrt(-2.0 * math.log(r2) / r2)
        return out

    def _uniform_pos(self):
        while True:
            u = self.uniform()
            if u != 0:
                return u


def _seqsum(x):
    """x.sum() left to right, as a C loop adds ([n] float64)."""
    return np.add.accumulate(x)[-1] if x.size else 0.0


def _orthonormalise(a, basis):
    """workload.c's orthonormalise(): a ([D]) made a unit vector orthogonal to
    the rows of basis ([n][D])."""
    keep = a.copy()
    for b in basis:
        dot = _seqsum(a * b)
        a = a - dot * b
    norm = _seqsum(a * a)
    if norm < 1e-6 and a.size <= 1024:
        a = keep
        norm = _seqsum(a * a)
    norm = math.sqrt(norm)
    return a / (norm if norm > 0.0 else 1.0)


SYNTH = dict(offset_sd=2.0, rank=16, rho=0.98, content=1.2, key_noise=0.5, query_noise=0.3,
             heavy_share=0.02, heavy_logit=4.0, sink_logit=5.0)


def synthetic(context=2048, kv_heads=2, q_heads=4, head_dim=64, seed=1, p=SYNTH):
    """The synthetic workload of tool/harness/workload.c (doc/eval.md §2.1).
    Returns q [n][q_heads][D], k and v [n][kv_heads][D], float32."""
    n, H, Hq, D, R = context, kv_heads, q_heads, head_dim, p["rank"]
    G = Hq // H
    k = np.empty((n, H, D), dtype=np.float32)
    v = np.empty((n, H, D), dtype=np.float32)
    q = np.empty((n, Hq, D), dtype=np.float32)
    r = GslStream(seed)
    sqD, qc, innov = math.sqrt(D), p["content"] * math.sqrt(R / D), math.sqrt(1.0 - p["rho"] ** 2)
    kv_sigma = np.tile([p["key_noise"], 1.0], D)          # key noise and value, drawn in turn per channel
    for h in range(H):
        # head_model_make(): offsets, U [D][R], the basis of span(U), then a and s
        o = r.gaussian(np.full(D, p["offset_sd"]))
        U = r.gaussian(np.full(D * R, 1.0 / math.sqrt(R))).reshape(D, R)
        basis = []
        for j in range(R):
            if len(basis) >= D - 2:
                break
            basis.append(_orthonormalise(U[:, j].copy(), basis))
        for _ in range(2):
            b = r.gaussian(np.ones(D))
            basis.append(_orthonormalise(b, basis if len(basis) < D else basis[:D - 1]))
        a, s = basis[-2], basis[-1]
        z = r.gaussian(np.ones(R))
        for t in range(n):
            if t > 0:
                z = p["rho"] * z + innov * r.gaussian(np.ones(R))
            uz = np.zeros(D)
            for j in range(R):                              # uz = U z, summed over j in order
                uz = uz + U[:, j] * z[j]
            heavy = t > 0 and r.uniform() < p["heavy_share"]
            g = r.gaussian(kv_sigma)
            x = o + uz + g[0::2]
            if heavy:
                x = x + sqD * a
            if t == 0:
                x = x + sqD * s
            k[t, h] = x
            v[t, h] = g[1::2]
            for gq in range(G):
                q[t, h * G + gq] = (qc * uz + p["heavy_logit"] * a + p["sink_logit"] * s
                                    + r.gaussian(np.full(D, p["query_noise"])))
    return q, k, v


def full_attention(q, k, v):
    """Full attention in float64 (tool/harness/eval.c).
        q: [D], k, v: [n][D] float32, the stored values -> (out [D], prob [n]) float64"""
    logits = k.astype(np.float64) @ q.astype(np.float64) / math.sqrt(q.size)
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    return prob @ v.astype(np.float64), prob


def run_cell(method="kvreviver", budget=0.1, context=2048, decode=16, seed=1, elem="f32",
             kv_heads=2, q_heads=4, head_dim=64):
    """One (budget, method) cell of `kvreviver eval` on the synthetic workload:
    a dict of its CSV columns."""
    q, k, v = synthetic(context, kv_heads, q_heads, head_dim, seed)
    n_prefill, G = context - decode, q_heads // kv_heads
    if method == "full":
        budget = 1.0
    cfg = kvr.method_config(method, budget, context, head_dim, elem)
    cfg.seed ^= (seed * 0x9E3779B97F4A7C15) % 2 ** 64     # eval's per-run hash seed (tool/harness/eval.c)
    # what the full cache stores: k and v rounded to elem (spec §4.1)
    k_st, v_st = (k, v) if elem == "f32" else (kvr.elem_round(k, elem), kvr.elem_round(v, elem))
    exact = (kvr.PART_SINK, kvr.PART_RECENT, kvr.PART_CANDIDATE)
    with kvr.Cache.from_config(cfg, kv_heads, q_heads, head_dim) as c:
        n_obs = min(cfg.obs_window, n_prefill)
        c.prefill(k[:n_prefill], v[:n_prefill], q[n_prefill - n_obs:n_prefill])
        errs, masses = [], []
        for t in range(n_prefill, context):
            c.append(k[t:t + 1], v[t:t + 1])
            out = c.attend(q[t])                            # [q_heads][D]
            is_exact = np.isin(c.parts(), exact)            # [kv_heads][t + 1]
            for h in range(kv_heads):
                for qh in range(h * G, (h + 1) * G):
                    ref, prob = full_attention(q[t, qh], k_st[:t + 1, h], v_st[:t + 1, h])
                    errs.append(np.linalg.norm(out[qh] - ref) / np.linalg.norm(ref))
                    masses.append(prob[is_exact[h]].sum())
        held, full = c.bytes_held(), c.bytes_full()
        n_exact = int(np.isin(c.parts(), exact).sum())
    return dict(workload="synthetic", context=context, budget=budget, method=method, bytes_ratio=held / full,
                exact_ratio=n_exact / (kv_heads * context), attn_rel_err=float(np.mean(errs)),
                mass_exact=float(np.mean(masses)), bytes_held=held)


def main(argv=None):
    ap = argparse.ArgumentParser(description="one synthetic cell of kvreviver eval, through the binding")
    ap.add_argument("--method", default="kvreviver")
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--elem", default="f32")
    a = ap.parse_args(argv)
    r = run_cell(a.method, a.budget, a.context, a.decode, a.seed, a.elem)
    cols = ("workload", "context", "budget", "method", "bytes_ratio", "exact_ratio", "attn_rel_err",
            "mass_exact", "bytes_held")
    print(",".join(cols))
    print(",".join(("%.9g" % r[c]) if isinstance(r[c], float) else str(r[c]) for c in cols))


if __name__ == "__main__":
    sys.exit(main())
