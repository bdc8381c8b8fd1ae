"""The few calls of oneDNN's C API (v3) that :mod:`cnnstep.backends.onednn.conv` and
:mod:`cnnstep.backends.onednn.pool` need, through ctypes.

oneDNN is the library behind PyTorch's and OpenVINO's CPU convolutions. Its wheels
(``onednn-cpu-gomp``, the ``onednn`` extra) hold only the shared library, no Python binding, so
the handful of C calls used here are declared with ctypes: an engine, memory descriptors of
plain layouts (NHWC activations, HWIO weights), convolution and pooling primitives and reorders,
run on a stream per thread. :class:`Owned` destroys what one geometry made.

:mod:`cnnstep.backends.onednn.library` finds, loads and checks ``libdnnl.so.3``; nothing is
loaded at import. The enum values below are those of oneDNN's ``dnnl_types.h`` and
``dnnl_common_types.h`` (C API v3: values are only ever added within a major version).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# dnnl_common_types.h / dnnl_types.h (C API v3)
F32 = 3
TAG_ANY, TAG_X, TAG_AB, TAG_NHWC, TAG_HWIO = 1, 2, 3, 22, 28
FORWARD_TRAINING, FORWARD_INFERENCE = 64, 96
CONVOLUTION_DIRECT, POOLING_MAX, POOLING_AVG_EXCLUDE_PADDING = 1, 0x1FF, 0x3FF
ELTWISE_RELU = 0x20
ENGINE_CPU = 1
STREAM_DEFAULT_FLAGS = 1
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 17, 33, 41
ARG_DIFF_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS, ARG_DIFF_BIAS = 129, 145, 161, 169
ARG_WORKSPACE = 64
QUERY_IMPL_INFO_STR, QUERY_WEIGHTS_MD, QUERY_DIFF_WEIGHTS_MD = 8, 131, 132
QUERY_SRC_MD, QUERY_DST_MD, QUERY_WORKSPACE_MD = 129, 133, 135
MAX_NDIMS = 12

Dims = ctypes.c_int64 * MAX_NDIMS
_vp = ctypes.c_void_p


class ExecArg(ctypes.Structure):
    """``dnnl_exec_arg_t``: which argument of a primitive a memory object is."""

    _fields_ = [("arg", ctypes.c_int), ("memory", _vp)]


class Version(ctypes.Structure):
    """``dnnl_version_t``: what :func:`dnnl_version` returns a pointer to."""

    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


#: ``dnnl_version_t.cpu_runtime`` of a library threaded with OpenMP (``DNNL_RUNTIME_OMP``).
RUNTIME_OMP = 2


class DnnlError(RuntimeError):
    """A oneDNN call returned an error status."""


class ReferenceOnlyError(DnnlError):
    """oneDNN offers only its reference implementation for a primitive: far slower than NumPy's
    kernels, so cnnstep does not use it."""


def dims(values: Iterable[int]) -> Any:
    """A ``dnnl_dims_t`` holding ``values``."""
    out = Dims()
    for i, v in enumerate(values):
        out[i] = int(v)
    return out


def declare(lib: Any) -> None:
    """Argument and result types of the calls used, so that pointers are never cut to C ints
    (an ``AttributeError`` names a symbol the library lacks)."""
    p, i = _vp, ctypes.c_int
    sigs: dict[str, tuple[list[Any], Any]] = {
        "dnnl_version": ([], ctypes.POINTER(Version)),
        "dnnl_engine_create": ([ctypes.POINTER(_vp), i, ctypes.c_size_t], i),
        "dnnl_stream_create": ([ctypes.POINTER(_vp), p, ctypes.c_uint], i),
        "dnnl_stream_wait": ([p], i),
        "dnnl_memory_desc_create_with_tag": ([ctypes.POINTER(_vp), i, Dims, i, i], i),
        "dnnl_memory_desc_get_size": ([p], ctypes.c_size_t),
        "dnnl_memory_desc_equal": ([p, p], i),
        "dnnl_memory_create": ([ctypes.POINTER(_vp), p, p, p], i),
        "dnnl_memory_destroy": ([p], i),
        "dnnl_primitive_desc_query": ([p, i, i, p], i),
        "dnnl_primitive_desc_query_md": ([p, i, i], p),
        "dnnl_primitive_create": ([ctypes.POINTER(_vp), p], i),
        "dnnl_primitive_execute": ([p, p, i, ctypes.POINTER(ExecArg)], i),
        "dnnl_primitive_destroy": ([p], i),
        "dnnl_primitive_desc_destroy": ([p], i),
        "dnnl_memory_desc_destroy": ([p], i),
        "dnnl_stream_destroy": ([p], i),
        "dnnl_reorder_primitive_desc_create": ([ctypes.POINTER(_vp), p, p, p, p, p], i),
        "dnnl_convolution_forward_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, i, p, p, p, p, Dims, Dims, Dims, Dims, p], i),
        "dnnl_convolution_backward_data_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, p, p, p, Dims, Dims, Dims, Dims, p, p], i),
        "dnnl_convolution_backward_weights_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, p, p, p, p, Dims, Dims, Dims, Dims, p, p], i),
        "dnnl_pooling_forward_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, i, p, p, Dims, Dims, Dims, Dims, Dims, p], i),
        "dnnl_pooling_backward_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, p, p, Dims, Dims, Dims, Dims, Dims, p, p], i),
        "dnnl_inner_product_forward_primitive_desc_create": (
            [ctypes.POINTER(_vp), p, i, p, p, p, p, p], i),
        "dnnl_primitive_attr_create": ([ctypes.POINTER(_vp)], i),
        "dnnl_primitive_attr_destroy": ([p], i),
        "dnnl_primitive_attr_set_post_ops": ([p, p], i),
        "dnnl_post_ops_create": ([ctypes.POINTER(_vp)], i),
        "dnnl_post_ops_destroy": ([p], i),
        "dnnl_post_ops_append_eltwise": ([p, i, ctypes.c_float, ctypes.c_float], i),
        "dnnl_memory_set_data_handle": ([p, p], i),
        "dnnl_primitive_desc_next_impl": ([p], i),
    }
    for name, (args, result) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result


#: dnnl_status_t values other than success, by name (dnnl_common_types.h).
STATUS = {1: "out of memory", 2: "invalid arguments", 3: "unimplemented",
          4: "no implementation left", 5: "runtime error", 6: "not required"}


def check(status: int, what: str) -> None:
    """Raise for a status other than ``dnnl_success``: :class:`MemoryError` when oneDNN ran
    out of memory, :class:`DnnlError` otherwise."""
    if status == 1:
        raise MemoryError(f"oneDNN: {what}: out of memory")
    if status != 0:
        raise DnnlError(f"oneDNN: {what} failed ({STATUS.get(status, f'status {status}')})")


class Api:
    """The loaded library, its CPU engine and a stream per thread."""

    def __init__(self, lib: Any, set_omp_threads: Any) -> None:
        self.lib, self._set_omp_threads = lib, set_omp_threads
        self.engine = _vp()
        check(lib.dnnl_engine_create(ctypes.byref(self.engine), ENGINE_CPU, 0), "engine")
        self._local = threading.local()

    def set_threads(self, threads: int) -> None:
        """OpenMP's thread count for this calling thread (it is thread-local), which oneDNN
        reads both when it makes a primitive (how the work is split) and when it runs one."""
        self._set_omp_threads(threads)

    def stream(self) -> Any:
        """This thread's stream (a stream is not to be shared between threads; it is destroyed
        with the thread's local data)."""
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = _Stream(self)
        return stream.handle

    def destroy(self, kind: str, handle: Any) -> None:
        """``dnnl_<kind>_destroy(handle)``: ``kind`` is ``primitive``, ``primitive_desc``,
        ``memory_desc`` or ``stream``."""
        getattr(self.lib, f"dnnl_{kind}_destroy")(handle)

    def desc(self, shape: Sequence[int], tag: int) -> Any:
        """A float32 memory descriptor of logical ``shape`` (NCHW / OIHW order) and ``tag``."""
        md = _vp()
        check(self.lib.dnnl_memory_desc_create_with_tag(
            ctypes.byref(md), len(shape), dims(shape), F32, tag), "memory descriptor")
        return md

    def query_md(self, pd: Any, what: int) -> Any:
        return _vp(self.lib.dnnl_primitive_desc_query_md(pd, what, 0))

    def size(self, md: Any) -> int:
        """Bytes of a memory of descriptor ``md``."""
        return int(self.lib.dnnl_memory_desc_get_size(md))

    def same(self, a: Any, b: Any) -> bool:
        return bool(self.lib.dnnl_memory_desc_equal(a, b))

    def impl(self, pd: Any) -> str:
        """The implementation oneDNN chose (``"brgconv:avx512_core"``, ``"ref:any"`` ...)."""
        s = ctypes.c_char_p()
        check(self.lib.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, ctypes.byref(s)),
              "query")
        return (s.value or b"").decode()

    def next_impl(self, pd: Any) -> bool:
        """Move ``pd`` on to oneDNN's next implementation; ``False`` when none is left (``pd``
        then holds the last one)."""
        status = self.lib.dnnl_primitive_desc_next_impl(pd)
        if status == 4:  # dnnl_last_impl_reached
            return False
        check(status, "next implementation")
        return True

    def primitive_desc(self, kind: str, *args: Any) -> Any:
        """``dnnl_<kind>_primitive_desc_create(&pd, engine, *args)``'s descriptor."""
        pd = _vp()
        check(getattr(self.lib, f"dnnl_{kind}_primitive_desc_create")(
            ctypes.byref(pd), self.engine, *args), kind.replace("_", " "))
        return pd

    def primitive(self, pd: Any) -> Any:
        prim = _vp()
        check(self.lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive")
        return prim

    def relu_attr(self) -> Any:
        """Primitive attributes with one post-op, ReLU (the caller destroys them; a primitive
        descriptor keeps a copy)."""
        lib, attr, ops = self.lib, _vp(), _vp()
        check(lib.dnnl_primitive_attr_create(ctypes.byref(attr)), "attributes")
        try:
            check(lib.dnnl_post_ops_create(ctypes.byref(ops)), "post-ops")
            try:
                check(lib.dnnl_post_ops_append_eltwise(ops, ELTWISE_RELU, 0.0, 0.0), "ReLU")
                check(lib.dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops")
            finally:
                lib.dnnl_post_ops_destroy(ops)
        except BaseException:
            lib.dnnl_primitive_attr_destroy(attr)
            raise
        return attr

    def reorder(self, src: Any, dst: Any) -> Any:
        """A primitive that copies a memory of layout ``src`` into layout ``dst`` (the caller
        destroys it)."""
        pd = _vp()
        check(self.lib.dnnl_reorder_primitive_desc_create(
            ctypes.byref(pd), src, self.engine, dst, self.engine, None), "reorder")
        try:
            return self.primitive(pd)
        finally:  # a primitive keeps what it needs of its descriptor
            self.destroy("primitive_desc", pd)

    def bind(self, mem: Any, array: np.ndarray) -> None:
        """Point the memory object ``mem`` at ``array``'s data (C-contiguous, of its size)."""
        check(self.lib.dnnl_memory_set_data_handle(mem, array.ctypes.data), "memory")

    def run(self, prim: Any, args: Any, n_args: int) -> None:
        """Run ``prim`` on packed ``ExecArg`` ``args`` of memory objects (no waiting: call
        :meth:`wait` after the last one)."""
        check(self.lib.dnnl_primitive_execute(prim, self.stream(), n_args, args), "execute")

    def wait(self) -> None:
        check(self.lib.dnnl_stream_wait(self.stream()), "stream wait")

    def execute(self, prim: Any, args: Sequence[tuple[int, Any, np.ndarray]],
                threads: int) -> None:
        """Run ``prim`` on ``(arg, descriptor, array)`` triples, on ``threads`` threads.

        Each array must be C-contiguous, of the descriptor's size, and stay alive during the
        call (it does: the caller holds it). ``threads`` should be the count the primitive was
        made with.
        """
        lib = self.lib
        self.set_threads(threads)
        mems = []
        try:
            for _, md, arr in args:
                mem = _vp()
                check(lib.dnnl_memory_create(ctypes.byref(mem), md, self.engine,
                                             _vp(arr.ctypes.data)), "memory")
                mems.append(mem)
            packed = (ExecArg * len(args))(*[ExecArg(a, m) for (a, _, _), m in zip(args, mems)])
            self.run(prim, packed, len(args))
            self.wait()
        finally:
            for mem in mems:
                lib.dnnl_memory_destroy(mem)


class Owned:
    """What one geometry makes in oneDNN (descriptors, primitives), destroyed with the object.

    A primitive descriptor for which oneDNN offers only its reference implementation raises
    :class:`ReferenceOnlyError` (:meth:`pd`): callers then run NumPy's kernels instead.
    """

    def __init__(self, api: Api) -> None:
        self._owned: list[tuple[str, Any]] = []  # first: __del__ runs after a failed __init__
        self.api = api

    def __del__(self) -> None:
        for kind, handle in reversed(getattr(self, "_owned", ())):  # primitives, then descs
            # not contextlib.suppress: at interpreter shutdown modules may already be gone
            try:  # noqa: SIM105
                self.api.destroy(kind, handle)
            except Exception:  # noqa: BLE001
                pass

    def _own(self, kind: str, handle: Any) -> Any:
        self._owned.append((kind, handle))
        return handle

    def desc(self, shape: Sequence[int], tag: int) -> Any:
        """A float32 memory descriptor, destroyed with this object."""
        return self._own("memory_desc", self.api.desc(shape, tag))

    def pd(self, kind: str, *args: Any) -> Any:
        """A primitive descriptor (see :meth:`Api.primitive_desc`), destroyed with this
        object."""
        pd = self._own("primitive_desc", self.api.primitive_desc(kind, *args))
        impl = self.api.impl(pd)
        if impl.startswith("ref"):
            raise ReferenceOnlyError(f"oneDNN offers only its reference implementation "
                                     f"({impl}) for this {kind.replace('_', ' ')}")
        return pd

    def primitive(self, pd: Any) -> Any:
        return self._own("primitive", self.api.primitive(pd))

    def reorder(self, src: Any, dst: Any) -> Any:
        return self._own("primitive", self.api.reorder(src, dst))

    def memory(self, md: Any, array: np.ndarray | None) -> Any:
        """A memory object of descriptor ``md`` on ``array``'s data (``None``: no data yet;
        :meth:`Api.bind` points it at an array before each run), destroyed with this object."""
        mem = _vp()
        check(self.api.lib.dnnl_memory_create(
            ctypes.byref(mem), md, self.api.engine,
            None if array is None else _vp(array.ctypes.data)), "memory")
        return self._own("memory", mem)


class _Stream:
    """A stream that is destroyed when the thread-local data holding it goes."""

    def __init__(self, api: Api) -> None:
        self.api, self.handle = api, _vp()
        check(api.lib.dnnl_stream_create(ctypes.byref(self.handle), api.engine,
                                         STREAM_DEFAULT_FLAGS), "stream")

    def __del__(self) -> None:
        # not contextlib.suppress: at interpreter shutdown modules may already be gone
        try:  # noqa: SIM105
            self.api.destroy("stream", self.handle)
        except Exception:  # noqa: BLE001
            pass
