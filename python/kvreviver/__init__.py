"""kvreviver: a NumPy binding of libkvreviver (reversible KV-cache compression).

A thin layer over the public C interface (lib/kvreviver.h) through ctypes:
every call is one library call (or one per position, for parts()), arrays go
to the library by pointer, and every status the library returns is raised as
kvreviver.Error.  doc/python.md is the guide, with a worked example.

    import numpy as np, kvreviver as kvr
    c = kvr.Cache("kvreviver", budget=0.25, context=1024, kv_heads=2, q_heads=4, head_dim=64)
    c.prefill(k, v, q_obs)          # k, v: [n][kv_heads][head_dim] float32, q_obs: [n_obs][q_heads][head_dim]
    out = c.attend(q)               # q: [q_heads][head_dim] -> out: [q_heads][head_dim]

Arrays in: numpy.ndarray of dtype float32, C-contiguous, of the shape the
call states; such an array is passed without a copy.  Anything else is a
TypeError (not an ndarray, another dtype) or a ValueError (another shape, not
C-contiguous, not writeable for an output): the binding never converts in
secret.  A closed cache raises ValueError, as a closed file does.
"""

import ctypes
import os

import numpy as np

from . import _lib
from ._lib import Config, lib

__version__ = "0.1.0"
__all__ = ["Error", "Config", "Cache", "Plan", "version", "methods", "method_config", "plan", "check_config",
           "head_bytes", "full_bytes", "elem_round", "elem_size", "backend_available", "hash",
           "hash_bucket", "hash_sign", "part_name", "STATUS_NAMES", "PART_NAMES",
           "PART_SINK", "PART_RECENT", "PART_CANDIDATE", "PART_VAGUE", "PART_DROPPED", "PART_QUANTIZED",
           "library_path"]

#: the shared library this module loaded, and how it was found
library_path = _lib.path
library_found_by = _lib.found_by

#: kvr_status values by their names in lib/kvreviver.h
STATUS_NAMES = {0: "KVR_OK", -1: "KVR_EINVAL", -2: "KVR_ENOMEM", -3: "KVR_ENONFINITE", -4: "KVR_ERANGE",
                -5: "KVR_EBUDGET", -6: "KVR_ESTATE", -7: "KVR_EBACKEND", -8: "KVR_EIO", -9: "KVR_EFORMAT",
                -10: "KVR_EDROPPED"}
for _code, _name in STATUS_NAMES.items():
    globals()[_name[4:]] = _code        # kvreviver.EINVAL == -1, ...

#: kvr_part values (spec §3.2), as parts() reports them; -1 is "not appended yet" nowhere here
PART_SINK, PART_RECENT, PART_CANDIDATE, PART_VAGUE, PART_DROPPED, PART_QUANTIZED = range(6)
PART_NAMES = ("sink", "recent", "candidate", "vague", "dropped", "quantized")

_BACKENDS = {"ref": 0, "cuda": 1}
_ATTEND_PEEK = 1


class Error(Exception):
    """A libkvreviver call failed.

    status:  the kvr_status code (negative int), e.g. -1
    name:    its name in lib/kvreviver.h, e.g. "KVR_EINVAL"
    message: kvr_last_error(), which names the call, the argument and its value

    The C contract holds: the call that failed left the cache as it was."""

    def __init__(self, status, message):
        self.status = status
        self.name = STATUS_NAMES.get(status, "status %d" % status)
        self.message = message
        super().__init__("%s: %s" % (self.name, message))


def _check(status):
    """Raise Error for a failing status; return KVR_OK."""
    if status != 0:
        raise Error(status, lib.kvr_last_error().decode("utf-8", "replace"))
    return status


def _str(b):
    return b.decode("utf-8", "replace") if b is not None else None


def _elem(elem):
    """An element type name ("f32", "float16", ...) or kvr_elem int, as the kvr_elem int."""
    if isinstance(elem, (int, np.integer)) and not isinstance(elem, bool):
        return int(elem)
    if not isinstance(elem, str):
        raise TypeError("elem must be a name such as 'f16' or a kvr_elem int, not %s" % type(elem).__name__)
    out = ctypes.c_int(0)
    _check(lib.kvr_elem_parse(elem.encode(), ctypes.byref(out)))
    return out.value


def _backend(backend):
    if backend not in _BACKENDS:
        raise ValueError("backend must be one of %s, not %r" % (", ".join(map(repr, _BACKENDS)), backend))
    return _BACKENDS[backend]


def _f32(name, a, shape, writeable=False):
    """The pointer to float32 array a, checked against shape (None: any length
    for that dimension); no copy is made."""
    if not isinstance(a, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray of dtype float32, not %s" % (name, type(a).__name__))
    if a.dtype != np.float32:
        raise TypeError("%s has dtype %s; kvreviver takes float32 (native byte order): pass %s.astype(np.float32)"
                        % (name, a.dtype.str, name))
    if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
        want = "[%s]" % "][".join("n" if s is None else str(s) for s in shape)
        raise ValueError("%s has shape %s, expected %s" % (name, list(a.shape), want))
    if not a.flags.c_contiguous:
        raise ValueError("%s is not C-contiguous (a slice or a transpose?): pass np.ascontiguousarray(%s)"
                         % (name, name))
    if writeable and not a.flags.writeable:
        raise ValueError("%s is read-only; an output array must be writeable" % name)
    return a.ctypes.data_as(_lib._f32p)


def _index(name, x):
    """x as a Python int (an int or NumPy integer; not a bool or a float)."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError("%s must be an int, not %s" % (name, type(x).__name__))
    return int(x)


# ---- library-wide calls ----------------------------------------------------

def version():
    """kvr_version(): the library's version string."""
    return _str(lib.kvr_version())


def methods():
    """The default method set, as `kvreviver eval` runs it without --method
    (kvr_method_name); kivi and the lever variants are taken by name too."""
    out, i = [], 0
    while lib.kvr_method_name(i) is not None:
        out.append(_str(lib.kvr_method_name(i)))
        i += 1
    return out


def method_config(method, budget, context, head_dim, elem="f16"):
    """kvr_method_config(): the named method with its levers ("h2o/store=q4",
    "kvreviver/bits=2/tier=0.75"; doc/methods.md §13.4), exactly as
    `kvreviver eval --method` takes them, planned for a budget (bytes held
    over the full cache's, in (0, 1]) at a context, head_dim and the full
    cache's element type.  Returns a Config.  Raises Error (KVR_EINVAL,
    KVR_EBUDGET)."""
    if not isinstance(method, str):
        raise TypeError("method must be a str such as 'kvreviver' or 'h2o/store=q4', not %s" % type(method).__name__)
    cfg = Config()
    _check(lib.kvr_method_config(method.encode(), float(budget), _index("context", context),
                                 _index("head_dim", head_dim), _elem(elem), ctypes.byref(cfg)))
    return cfg


def plan(budget, context, head_dim, cfg):
    """kvr_plan(): a copy of cfg with window, candidates, width (and the KIVI
    or tier sizes) planned for the budget (spec §9.2).  cfg is unchanged.
    Raises Error (KVR_EBUDGET, KVR_EINVAL)."""
    out = cfg.copy()
    _check(lib.kvr_plan(float(budget), _index("context", context), _index("head_dim", head_dim), ctypes.byref(out)))
    return out


def check_config(cfg, head_dim):
    """kvr_config_check(): None, or Error naming the first field at fault."""
    _check(lib.kvr_config_check(ctypes.byref(cfg), _index("head_dim", head_dim)))


def head_bytes(cfg, head_dim):
    """kvr_head_bytes(): bytes one head cache with cfg holds (spec §9.1)."""
    return int(lib.kvr_head_bytes(ctypes.byref(cfg), _index("head_dim", head_dim)))


def full_bytes(context, head_dim, elem="f16"):
    """kvr_full_bytes(): bytes of one full head cache at a context (spec §9.1)."""
    return int(lib.kvr_full_bytes(_index("context", context), _index("head_dim", head_dim), _elem(elem)))


def elem_size(elem):
    """kvr_elem_size(): bytes of one element (4 for f32, 2 otherwise)."""
    return int(lib.kvr_elem_size(_elem(elem)))


def elem_round(x, elem):
    """kvr_elem_round() of every element of x (any shape, float32): what a
    stored value reads as (spec §4.1; inf where it overflows).  A new array."""
    _f32("x", x, (None,) * x.ndim if isinstance(x, np.ndarray) else (None,))
    e = _elem(elem)
    out = np.empty_like(x)
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    for i in range(flat_in.size):
        flat_out[i] = lib.kvr_elem_round(e, float(flat_in[i]))
    return out


def backend_available(backend):
    """kvr_backend_available(): True when "ref" or "cuda" is built and usable here."""
    return bool(lib.kvr_backend_available(_backend(backend)))


def hash(seed, layer, kv_head, row, pos):
    """kvr_hash(): the 64-bit hash of a position (spec §5.2)."""
    return int(lib.kvr_hash(int(seed), int(layer), int(kv_head), int(row), int(pos)))


def hash_bucket(h, width):
    """kvr_hash_bucket(): the bucket of hash h in [0, width) (spec §5.3)."""
    return int(lib.kvr_hash_bucket(int(h), int(width)))


def hash_sign(h):
    """kvr_hash_sign(): +1 or -1 (spec §5.3)."""
    return int(lib.kvr_hash_sign(int(h)))


def part_name(part):
    """kvr_part_name(): "sink", "recent", "candidate", "vague", "dropped", ... ("?" otherwise)."""
    return _str(lib.kvr_part_name(part))


# ---- the planner's split -----------------------------------------------------

class Plan:
    """The planner's split of one head cache (every head cache of a model
    cache is the same): positions per part, the sketch's shape, and the bytes
    (spec §9.1) against the full head cache at the planned context."""

    FIELDS = ("sinks", "window", "candidates", "tier_tokens", "tier_bits", "kivi_tokens", "kivi_bits",
              "depth", "width", "store", "elem")

    def __init__(self, cfg, head_dim, context):
        for f in self.FIELDS:
            setattr(self, f, getattr(cfg, f))
        self.store = _str(lib.kvr_store_name(cfg.store))
        self.elem = _str(lib.kvr_elem_name(cfg.elem))
        self.context = context
        self.head_bytes = head_bytes(cfg, head_dim)
        self.full_head_bytes = int(lib.kvr_full_bytes(context, head_dim, cfg.elem)) if context else None

    def as_dict(self):
        d = {f: getattr(self, f) for f in self.FIELDS}
        d.update(head_bytes=self.head_bytes, full_head_bytes=self.full_head_bytes)
        return d

    def __repr__(self):
        parts = ["sinks %d" % self.sinks, "window %d" % self.window, "candidates %d" % self.candidates]
        if self.tier_bits:
            parts.append("tier %d at %d bits" % (self.tier_tokens, self.tier_bits))
        if self.kivi_bits:
            parts.append("kivi body %d at %d bits" % (self.kivi_tokens, self.kivi_bits))
        parts.append("sketch %dx%d" % (self.depth, self.width) if self.depth and self.width else "no sketch")
        ratio = ""
        if self.full_head_bytes:
            ratio = " of %d (%.4f)" % (self.full_head_bytes, self.head_bytes / self.full_head_bytes)
        return "Plan(%s; store %s, elem %s; %d bytes per head%s)" % (", ".join(parts), self.store, self.elem,
                                                                    self.head_bytes, ratio)


# ---- the model cache -----------------------------------------------------------

class Cache:
    """A model cache of layers x kv_heads head caches (kvr_cache, spec §3).

    Cache(method, budget, context, kv_heads, q_heads, head_dim, layers=1,
          elem="f16", backend="ref", seed=None)

    method: a method name with its levers, as `kvreviver eval --method`
    takes it ("kvreviver", "h2o/store=q4", "kivi/bits=3"; doc/methods.md);
    budget: bytes held over the full cache's, in (0, 1]; context: the
    positions the budget is planned for; elem: the full cache's element type
    ("f32", "f16", "bf16"); seed: the sketch's hash seed (spec §5), None
    keeps the method's.  Cache.from_config() takes a Config instead,
    Cache.load() and Cache.from_bytes() a cache file.  Raises Error
    (KVR_EINVAL, KVR_EBUDGET, KVR_EBACKEND, KVR_ENOMEM).

    Use it as a context manager or call close(); the library's memory is
    freed then (or when the object is collected)."""

    def __init__(self, method, budget, context, kv_heads, q_heads, head_dim, layers=1, elem="f16",
                 backend="ref", seed=None):
        self._ptr = None
        cfg = method_config(method, budget, context, head_dim, elem)
        if seed is not None:
            cfg.seed = int(seed) & (2 ** 64 - 1)
        self._create(cfg, layers, kv_heads, q_heads, head_dim, backend)
        self.method, self.budget, self.context = method, float(budget), int(context)

    @classmethod
    def from_config(cls, cfg, kv_heads, q_heads, head_dim, layers=1, backend="ref", context=None):
        """A cache with an explicit Config (kvr_cache_create); context, when
        given, is what plan() sets the full head cache's bytes against."""
        if not isinstance(cfg, Config):
            raise TypeError("cfg must be a kvreviver.Config, not %s" % type(cfg).__name__)
        self = cls.__new__(cls)
        self._ptr = None
        self._create(cfg, layers, kv_heads, q_heads, head_dim, backend)
        self.method, self.budget, self.context = None, None, context
        return self

    def _create(self, cfg, layers, kv_heads, q_heads, head_dim, backend):
        ptr = ctypes.c_void_p()
        _check(lib.kvr_cache_create(ctypes.byref(ptr), _index("layers", layers), _index("kv_heads", kv_heads),
                                    _index("q_heads", q_heads), _index("head_dim", head_dim), ctypes.byref(cfg),
                                    _backend(backend)))
        self._adopt(ptr)

    def _adopt(self, ptr):
        self._ptr = ptr
        n = [ctypes.c_int() for _ in range(4)]
        _check(lib.kvr_cache_dims(ptr, *[ctypes.byref(x) for x in n]))
        self.layers, self.kv_heads, self.q_heads, self.head_dim = (x.value for x in n)

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        self._ptr = None
        self._adopt(ptr)
        self.method, self.budget, self.context = None, None, None
        return self

    # -- life cycle

    def close(self):
        """Free the library's cache (kvr_cache_free).  Later calls raise
        ValueError; closing twice is harmless."""
        if getattr(self, "_ptr", None) is not None:
            ptr, self._ptr = self._ptr, None
            lib.kvr_cache_free(ptr)

    def __del__(self):
        try:
            self.close()
        except Exception:       # interpreter shutdown: the library may be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._ptr is None

    def _p(self):
        if self._ptr is None:
            raise ValueError("operation on a closed kvreviver.Cache")
        return self._ptr

    def __repr__(self):
        if self._ptr is None:
            return "<kvreviver.Cache closed>"
        return "<kvreviver.Cache %s%d layer(s) x %d kv heads, %d q heads, head_dim %d, lengths %s>" % (
            "%s at %g, " % (self.method, self.budget) if self.method else "", self.layers, self.kv_heads,
            self.q_heads, self.head_dim, [self.length(l) for l in range(self.layers)])

    # -- what it is

    @property
    def config(self):
        """A copy of the configuration the cache was created with (kvr_cache_config)."""
        p = lib.kvr_cache_config(self._p())
        if not p:
            _check(-1)
        return p.contents.copy()

    def plan(self):
        """The planner's split of each head cache (a Plan): sinks, window,
        candidates, tier and KIVI positions, sketch depth x width, bytes."""
        return Plan(self.config, self.head_dim, self.context)

    def length(self, layer=0):
        """kvr_length(): tokens appended to a layer so far.  Raises Error for a bad layer."""
        n = lib.kvr_length(self._p(), _index("layer", layer))
        if n < 0:
            _check(-1)
        return int(n)

    def bytes_held(self):
        """kvr_bytes(): bytes the whole cache holds now (spec §9.1)."""
        held = ctypes.c_size_t()
        _check(lib.kvr_bytes(self._p(), ctypes.byref(held), None))
        return int(held.value)

    def bytes_full(self):
        """kvr_bytes(): bytes of the full cache at the same per-layer lengths."""
        full = ctypes.c_size_t()
        _check(lib.kvr_bytes(self._p(), None, ctypes.byref(full)))
        return int(full.value)

    # -- filling it

    def append(self, k, v, layer=0):
        """kvr_append(): n tokens of one layer (spec §3.3).
            k, v: [n][kv_heads][head_dim] float32
        Raises Error (KVR_ENONFINITE for a NaN or Inf, KVR_ERANGE, KVR_EINVAL);
        the cache is then unchanged."""
        c = self._p()
        pk = _f32("k", k, (None, self.kv_heads, self.head_dim))
        pv = _f32("v", v, (k.shape[0], self.kv_heads, self.head_dim))
        _check(lib.kvr_append(c, _index("layer", layer), k.shape[0], pk, pv))

    def prefill(self, k, v, q_obs=None, layer=0):
        """kvr_prefill(): compress a prompt into an empty layer (spec §10).
            k, v:  [n][kv_heads][head_dim] float32
            q_obs: [n_obs][q_heads][head_dim] float32, the queries of the last
                   n_obs prompt positions (None: n_obs = 0, for a method
                   that keeps no scores)
        Raises Error (KVR_ESTATE when the layer is not empty, KVR_ENONFINITE,
        KVR_ERANGE, KVR_EINVAL); the layer then stays empty."""
        c = self._p()
        pk = _f32("k", k, (None, self.kv_heads, self.head_dim))
        pv = _f32("v", v, (k.shape[0], self.kv_heads, self.head_dim))
        n_obs, pq = 0, None
        if q_obs is not None:
            pq = _f32("q_obs", q_obs, (None, self.q_heads, self.head_dim))
            n_obs = q_obs.shape[0]
        _check(lib.kvr_prefill(c, _index("layer", layer), k.shape[0], pk, pv, n_obs, pq))

    # -- reading it

    def attend(self, q, layer=0, peek=False, out=None):
        """kvr_attend(): one decode step's attention for every query head (spec §11).
            q:   [q_heads][head_dim] float32
            out: [q_heads][head_dim] float32, written (a new array when None)
        peek=True leaves the importance scores as they are (KVR_ATTEND_PEEK);
        otherwise this step's attention updates them (spec §6.1).  Returns
        out.  Raises Error (KVR_ESTATE for an empty layer, KVR_ENONFINITE);
        the cache, its scores and out are then unchanged."""
        c = self._p()
        pq = _f32("q", q, (self.q_heads, self.head_dim))
        if out is None:
            out = np.empty((self.q_heads, self.head_dim), dtype=np.float32)
        po = _f32("out", out, (self.q_heads, self.head_dim), writeable=True)
        _check(lib.kvr_attend(c, _index("layer", layer), pq, po, _ATTEND_PEEK if peek else 0))
        return out

    def reconstruct(self, pos, kv_head=0, layer=0):
        """kvr_reconstruct(): (k, v), each [head_dim] float32, of a position as
        attention sees it: stored (dequantized) for an exact or quantized part,
        the reconstruction (spec §8) for a vague one.  Raises Error
        (KVR_EDROPPED for a dropped position, KVR_EINVAL)."""
        c = self._p()
        k = np.empty(self.head_dim, dtype=np.float32)
        v = np.empty(self.head_dim, dtype=np.float32)
        _check(lib.kvr_reconstruct(c, _index("layer", layer), _index("kv_head", kv_head), _index("pos", pos),
                                   k.ctypes.data_as(_lib._f32p), v.ctypes.data_as(_lib._f32p)))
        return k, v

    def part(self, pos, kv_head=0, layer=0):
        """kvr_part_of(): the part (PART_SINK ... PART_QUANTIZED) holding one position."""
        p = ctypes.c_int()
        _check(lib.kvr_part_of(self._p(), _index("layer", layer), _index("kv_head", kv_head),
                               _index("pos", pos), ctypes.byref(p)))
        return p.value

    def parts(self, layer=0):
        """The part of every position of a layer (kvr_part_of of each):
            returns [kv_heads][length] int32, values PART_SINK (0) ..
            PART_QUANTIZED (5); PART_NAMES[p] names them."""
        c, layer = self._p(), _index("layer", layer)
        n = self.length(layer)
        out = np.empty((self.kv_heads, n), dtype=np.int32)
        p = ctypes.c_int()
        for h in range(self.kv_heads):
            for t in range(n):
                _check(lib.kvr_part_of(c, layer, h, t, ctypes.byref(p)))
                out[h, t] = p.value
        return out

    def score(self, pos, kv_head=0, layer=0):
        """kvr_score_of(): the importance score of an exact position in the
        window or candidates.  Raises Error (KVR_ESTATE otherwise)."""
        s = ctypes.c_float()
        _check(lib.kvr_score_of(self._p(), _index("layer", layer), _index("kv_head", kv_head),
                                _index("pos", pos), ctypes.byref(s)))
        return s.value

    # -- cache files (spec §16, doc/files.md)

    def save(self, path):
        """kvr_cache_save(): write the cache file at path (through path.tmp,
        renamed over it: a failed save leaves any earlier file whole).
        Raises Error (KVR_EIO)."""
        _check(lib.kvr_cache_save(self._p(), os.fsencode(path)))

    @classmethod
    def load(cls, path):
        """kvr_cache_load(): a cache (reference backend) from a file saved by
        save(); the file is checked as untrusted input.  Raises Error
        (KVR_EIO, KVR_EFORMAT)."""
        ptr = ctypes.c_void_p()
        _check(lib.kvr_cache_load(ctypes.byref(ptr), os.fsencode(path)))
        return cls._wrap(ptr)

    def to_bytes(self):
        """kvr_cache_save_mem(): the bytes of the cache file, as bytes."""
        buf, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.kvr_cache_save_mem(self._p(), ctypes.byref(buf), ctypes.byref(n)))
        try:
            return ctypes.string_at(buf, n.value)
        finally:
            lib.kvr_buffer_free(buf)

    @classmethod
    def from_bytes(cls, data):
        """kvr_cache_load_mem(): a cache from the bytes of a cache file."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes, not %s" % type(data).__name__)
        data = bytes(data)
        ptr = ctypes.c_void_p()
        _check(lib.kvr_cache_load_mem(ctypes.byref(ptr), data, len(data)))
        return cls._wrap(ptr)
