"""_lib.py: finding libkvreviver and declaring its calls for ctypes.

The library is looked up, in this order:

1. ``KVREVIVER_LIB``: the path of the shared library itself
   (``.libs/libkvreviver.so`` in a build tree) or of the directory holding it;
2. ``pkg-config --variable=libdir kvreviver`` (``PKG_CONFIG`` names another
   pkg-config, ``PKG_CONFIG_PATH`` is honoured): an installed library;
3. the dynamic loader's own search (``ctypes.util.find_library``).

Nothing here is compiled: the prototypes below mirror lib/kvreviver.h, and
``Config`` mirrors ``kvr_config`` field by field (python/tests/test_abi.py
checks the offsets against the header with a C compiler when one is there).
"""

import ctypes
import ctypes.util
import glob
import os
import subprocess
import sys

from ctypes import (POINTER, Structure, c_char_p, c_double, c_float, c_int, c_long,
                    c_size_t, c_uint, c_uint32, c_uint64, c_void_p)

_NAMES = ("libkvreviver.dylib",) if sys.platform == "darwin" else ("libkvreviver.so", "libkvreviver.so.0")


def _in_dir(d):
    """The library inside directory d, or None."""
    for name in _NAMES:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    found = sorted(glob.glob(os.path.join(d, "libkvreviver.so.*")))
    return found[0] if found else None


def _candidates():
    """(where, path) pairs to try, in order; where says how the path was found."""
    env = os.environ.get("KVREVIVER_LIB")
    if env:
        path = _in_dir(env) if os.path.isdir(env) else env
        # KVREVIVER_LIB set: that library or none (never a silent fallback)
        return [("KVREVIVER_LIB", path or os.path.join(env, _NAMES[0]))]
    out = []
    try:
        libdir = subprocess.run([os.environ.get("PKG_CONFIG", "pkg-config"), "--variable=libdir", "kvreviver"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        libdir = ""
    if libdir and _in_dir(libdir):
        out.append(("pkg-config", _in_dir(libdir)))
    found = ctypes.util.find_library("kvreviver")
    if found:
        out.append(("the dynamic loader", found))
    out.append(("the dynamic loader", _NAMES[-1]))
    return out


def _load():
    tried = []
    for where, path in _candidates():
        try:
            return ctypes.CDLL(path), path, where
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
    raise ImportError("kvreviver: libkvreviver not found; tried " + "; ".join(tried)
                      + ". Build it (./configure && make) and set KVREVIVER_LIB to the build tree's "
                      "'.libs/libkvreviver.so', or 'make install' it where pkg-config finds kvreviver.pc "
                      "(doc/python.md)")


lib, path, found_by = _load()


class Config(Structure):
    """kvr_config (lib/kvreviver.h, spec §3-§19), field for field.

    Enumerations are plain ints here (the kvr_ enum values); make one with
    Config.default(), Config.paper(), kvreviver.method_config() or
    kvreviver.plan(), then change fields by attribute."""
    _fields_ = [
        ("sinks", c_int), ("window", c_int), ("candidates", c_int),
        ("depth", c_int), ("width", c_int), ("seed", c_uint64),
        ("rows", c_int), ("centre", c_int), ("shrink", c_int),
        ("vague", c_int), ("var_cap", c_double), ("revive", c_double),
        ("importance", c_int), ("obs_window", c_int), ("pool_kernel", c_int), ("pool", c_int),
        ("elem", c_int),
        ("sketch_share", c_double), ("recent_share", c_double),
        ("store", c_int), ("kivi_bits", c_int), ("kivi_group", c_int), ("kivi_tokens", c_int),
        ("tier_bits", c_int), ("tier_tokens", c_int), ("tier_share", c_double), ("tier_promote", c_double),
        ("tier_balance", c_int),
        ("tier_rotate", c_int),
    ]

    @classmethod
    def default(cls):
        """kvr_config_default(): the moment route without a tier (kvreviver-moment), unplanned."""
        c = cls()
        lib.kvr_config_default(ctypes.byref(c))
        return c

    @classmethod
    def paper(cls):
        """kvr_config_paper(): the paper-faithful configuration, unplanned."""
        c = cls()
        lib.kvr_config_paper(ctypes.byref(c))
        return c

    def copy(self):
        """A copy that shares nothing with this one."""
        return Config.from_buffer_copy(bytes(self))

    def as_dict(self):
        """Every field by name."""
        return {name: getattr(self, name) for name, _ in self._fields_}

    def __eq__(self, other):
        return isinstance(other, Config) and self.as_dict() == other.as_dict()

    __hash__ = None

    def __repr__(self):
        return "Config(%s)" % ", ".join("%s=%r" % kv for kv in self.as_dict().items())


_cache_p = c_void_p
_f32p = POINTER(c_float)


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


_declare("kvr_strerror", c_char_p, c_int)
_declare("kvr_last_error", c_char_p)
_declare("kvr_version", c_char_p)
_declare("kvr_elem_size", c_size_t, c_int)
_declare("kvr_elem_name", c_char_p, c_int)
_declare("kvr_elem_parse", c_int, c_char_p, POINTER(c_int))
_declare("kvr_elem_round", c_float, c_int, c_float)
_declare("kvr_store_name", c_char_p, c_int)
_declare("kvr_config_default", None, POINTER(Config))
_declare("kvr_config_paper", None, POINTER(Config))
_declare("kvr_config_check", c_int, POINTER(Config), c_int)
_declare("kvr_head_bytes", c_size_t, POINTER(Config), c_int)
_declare("kvr_full_bytes", c_size_t, c_long, c_int, c_int)
_declare("kvr_plan", c_int, c_double, c_long, c_int, POINTER(Config))
_declare("kvr_method_config", c_int, c_char_p, c_double, c_long, c_int, c_int, POINTER(Config))
_declare("kvr_method_name", c_char_p, c_int)
_declare("kvr_part_name", c_char_p, c_int)
_declare("kvr_cache_create", c_int, POINTER(_cache_p), c_int, c_int, c_int, c_int, POINTER(Config), c_int)
_declare("kvr_cache_free", None, _cache_p)
_declare("kvr_append", c_int, _cache_p, c_int, c_int, _f32p, _f32p)
_declare("kvr_prefill", c_int, _cache_p, c_int, c_int, _f32p, _f32p, c_int, _f32p)
_declare("kvr_attend", c_int, _cache_p, c_int, _f32p, _f32p, c_uint)
_declare("kvr_reconstruct", c_int, _cache_p, c_int, c_int, c_long, _f32p, _f32p)
_declare("kvr_part_of", c_int, _cache_p, c_int, c_int, c_long, POINTER(c_int))
_declare("kvr_score_of", c_int, _cache_p, c_int, c_int, c_long, _f32p)
_declare("kvr_length", c_long, _cache_p, c_int)
_declare("kvr_bytes", c_int, _cache_p, POINTER(c_size_t), POINTER(c_size_t))
_declare("kvr_cache_config", POINTER(Config), _cache_p)
_declare("kvr_cache_dims", c_int, _cache_p, POINTER(c_int), POINTER(c_int), POINTER(c_int), POINTER(c_int))
_declare("kvr_backend_available", c_int, c_int)
_declare("kvr_backend_name", c_char_p, c_int)
_declare("kvr_hash", c_uint64, c_uint64, c_uint32, c_uint32, c_uint32, c_uint64)
_declare("kvr_hash_bucket", c_uint32, c_uint64, c_uint32)
_declare("kvr_hash_sign", c_int, c_uint64)
_declare("kvr_cache_save", c_int, _cache_p, c_char_p)
_declare("kvr_cache_load", c_int, POINTER(_cache_p), c_char_p)
_declare("kvr_cache_save_mem", c_int, _cache_p, POINTER(c_void_p), POINTER(c_size_t))
_declare("kvr_cache_load_mem", c_int, POINTER(_cache_p), c_void_p, c_size_t)
_declare("kvr_buffer_free", None, c_void_p)
