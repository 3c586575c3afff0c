"""vectors_port.py: the binding as a port under test (doc/porting.md).

    python3 vectors_port.py VECTORS PORTDIR [FILTERED]

reads the conformance vectors and writes, under PORTDIR, every expected
array that the public interface can produce, computed through kvreviver:
level 1 (hash, bucket, sign), 2 (rounding; the stored values of the store=
and KIVI scenarios), 3 (the planner), 4 (parts after each operation),
6 (reconstructions) and 7 (attention).  Level 5 (the sketch's sums and
counts, the running sums) is the sketch's inside, which no public call shows:
SKIPPED_LEVELS lists it, and the test validates against a manifest without
those lines (filtered_vectors(), written at FILTERED when it is given).
`kvreviver validate` then judges the arrays, as for any port.
"""

import os
import re
import sys

import numpy as np

import kvreviver as kvr

SKIPPED_LEVELS = (5,)

_ENUMS = {
    "rows": {"median": 0, "mean": 1},
    "importance": {"none": 0, "h2o": 1, "snapkv": 2, "tova": 3},
    "pool": {"avg": 0, "max": 1},
    "vague": {"reconstruct": 0, "moment": 1},
    "elem": {"f32": 0, "f16": 1, "bf16": 2},
    "store": {"elem": 0, "q8": 1, "q4": 2},
}
# scenario keys that are kvr_config fields (the rest: dimensions and descriptions)
_CONFIG_KEYS = ("sinks", "window", "candidates", "depth", "width", "seed", "rows", "centre", "shrink",
                "importance", "obs_window", "pool_kernel", "pool", "elem", "vague", "var_cap", "revive",
                "store", "kivi_bits", "kivi_group", "kivi_tokens", "tier_bits", "tier_tokens", "tier_promote",
                "tier_balance", "tier_rotate")


def _level(line):
    """The level an array line's description starts with (validate's reading), or 0."""
    m = re.match(r"array \S+ \S+ \S+ \S+ level (\d+)", line)
    return int(m.group(1)) if m else 0


def read_manifest(root):
    """(scenarios {name: {key: value}}, arrays [(rel, dtype, shape, kind, level)])."""
    scenarios, arrays = {}, []
    with open(os.path.join(root, "MANIFEST")) as f:
        for line in f:
            if line.startswith("scenario "):
                head = line.split(" -- ")[0].split()
                scenarios[head[1]] = dict(kv.split("=", 1) for kv in head[2:])
            elif line.startswith("array "):
                w = line.split()
                arrays.append((w[1], w[2], w[3], w[4], _level(line)))
    return scenarios, arrays


def scenario_config(sc):
    """The scenario's kvr_config: the paper-faithful one with the line's fields
    (as tool/conformance/vectors_scripts.c builds it)."""
    cfg = kvr.Config.paper()
    for key in _CONFIG_KEYS:
        if key not in sc:
            continue
        val = sc[key]
        if key in _ENUMS:
            val = _ENUMS[key][val]
        elif key in ("var_cap", "revive", "tier_promote"):
            val = float(val)
        else:
            val = int(val, 0)
        setattr(cfg, key, val)
    return cfg


def _save(port, rel, a):
    path = os.path.join(port, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, a)


def port_hash(vec, port):
    grid = np.load(os.path.join(vec, "inputs/hash/grid.npy"))          # [rows][5] u64
    widths = np.load(os.path.join(vec, "inputs/hash/widths.npy"))      # [W] i32
    h = np.array([kvr.hash(*row) for row in grid.tolist()], dtype="<u8")
    _save(port, "hash/hash.npy", h)
    _save(port, "hash/sign.npy", np.array([kvr.hash_sign(x) for x in h.tolist()], dtype="<i4"))
    _save(port, "hash/bucket.npy", np.array([[kvr.hash_bucket(x, w) for w in widths.tolist()] for x in h.tolist()],
                                            dtype="<i4"))


def port_elem(vec, port):
    x = np.load(os.path.join(vec, "inputs/elem/x.npy"))                # [n] f32
    for e in ("f16", "bf16"):
        _save(port, "elem/%s.npy" % e, kvr.elem_round(x, e))


def port_planner(vec, port):
    grid = np.load(os.path.join(vec, "inputs/planner/grid.npy"))       # [rows][11] f64
    plan = np.zeros((len(grid), 8), dtype="<i4")
    nbytes = np.zeros(len(grid), dtype="<u8")
    for i, (ratio, context, dim, elem, depth, sshare, rshare, store, tbits, tshare, kbits) in enumerate(grid.tolist()):
        cfg = kvr.Config.paper()
        cfg.elem, cfg.depth, cfg.sketch_share, cfg.recent_share = int(elem), int(depth), sshare, rshare
        cfg.store, cfg.tier_bits, cfg.tier_share, cfg.kivi_bits = int(store), int(tbits), tshare, int(kbits)
        try:
            p = kvr.plan(ratio, int(context), int(dim), cfg)
        except kvr.Error as e:
            plan[i, 0] = e.status
            continue
        plan[i] = (0, p.sinks, p.window, p.candidates, p.depth, p.width, p.tier_tokens, p.kivi_group)
        nbytes[i] = kvr.head_bytes(p, int(dim))
    _save(port, "planner/plan.npy", plan)
    _save(port, "planner/bytes.npy", nbytes)


def port_scenario(vec, port, name, sc, expected):
    """Replay one scripted scenario; write the arrays named in expected (a set of rel paths)."""
    ld = lambda f: np.load(os.path.join(vec, "inputs", name, f))
    script = ld("script.npy")                                          # [ops][3] (op, n, n_obs)
    k, v = ld("k.npy"), ld("v.npy")                                    # [tokens][kv_heads][D]
    q = ld("q.npy") if os.path.exists(os.path.join(vec, "inputs", name, "q.npy")) else None
    q_obs = ld("q_obs.npy") if os.path.exists(os.path.join(vec, "inputs", name, "q_obs.npy")) else None
    H, Hq, D, N = int(sc["kv_heads"]), int(sc["q_heads"]), int(sc["head_dim"]), k.shape[0]
    layer = int(sc["layer"])
    parts = np.full((len(script), H, N), -1, dtype="<i4")
    attend = np.zeros((0 if q is None else q.shape[0], Hq, D), dtype="<f4")
    with kvr.Cache.from_config(scenario_config(sc), H, Hq, D, layers=int(sc["layers"])) as c:
        nxt, step = 0, 0
        for o, (op, n, n_obs) in enumerate(script.tolist()):
            if op == 0:
                c.prefill(k[nxt:nxt + n], v[nxt:nxt + n], q_obs[:n_obs] if n_obs else None, layer=layer)
                nxt += n
            elif op == 1:
                c.append(k[nxt:nxt + n], v[nxt:nxt + n], layer=layer)
                nxt += n
            else:
                c.attend(q[step], layer=layer, out=attend[step])
                step += 1
            parts[o, :, :nxt] = c.parts(layer)
        _save(port, "%s/parts.npy" % name, parts)
        if attend.shape[0]:
            _save(port, "%s/attend.npy" % name, attend)
        if "%s/stored.npy" % name in expected:
            stored = np.zeros((2, H, N, D), dtype="<f4")
            for h in range(H):
                for t in range(N):
                    try:
                        stored[0, h, t], stored[1, h, t] = c.reconstruct(t, h, layer)
                    except kvr.Error as e:
                        if e.status != kvr.EDROPPED:
                            raise
            _save(port, "%s/stored.npy" % name, stored)
        if "%s/reconstruct.npy" % name in expected:
            probe = ld("probe_pos.npy")                                # [P] i32
            rec = np.zeros((2, H, probe.size, D), dtype="<f4")
            for h in range(H):
                for j, t in enumerate(probe.tolist()):
                    rec[0, h, j], rec[1, h, j] = c.reconstruct(t, h, layer)
            _save(port, "%s/reconstruct.npy" % name, rec)


def run(vec, port):
    """Write the port's arrays; returns the rel names (under expected/) of the arrays it skips."""
    scenarios, arrays = read_manifest(vec)
    expected = {rel[len("expected/"):] for rel, _, _, _, lv in arrays
                if rel.startswith("expected/") and lv not in SKIPPED_LEVELS}
    port_hash(vec, port)
    port_elem(vec, port)
    port_planner(vec, port)
    for name, sc in scenarios.items():
        if name != "planner":
            port_scenario(vec, port, name, sc, expected)
    return [rel for rel, _, _, _, lv in arrays if rel.startswith("expected/") and lv in SKIPPED_LEVELS]


def filtered_vectors(vec, out):
    """A vectors directory at out whose MANIFEST leaves out the arrays of
    SKIPPED_LEVELS (their lines only; inputs, expected and tolerance are
    links to vec's)."""
    os.makedirs(out, exist_ok=True)
    for sub in ("inputs", "expected", "tolerance"):
        os.symlink(os.path.abspath(os.path.join(vec, sub)), os.path.join(out, sub))
    with open(os.path.join(vec, "MANIFEST")) as f, open(os.path.join(out, "MANIFEST"), "w") as g:
        for line in f:
            if line.startswith("array expected/") and _level(line) in SKIPPED_LEVELS:
                continue
            g.write(line)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: vectors_port.py VECTORS PORTDIR [FILTERED]")
    skipped = run(sys.argv[1], sys.argv[2])
    if len(sys.argv) == 4:
        filtered_vectors(sys.argv[1], sys.argv[3])
    print("vectors_port: wrote %s; %d arrays of level %s are not reachable through the public API"
          % (sys.argv[2], len(skipped), ", ".join(map(str, SKIPPED_LEVELS))))
