"""A restricted reader of pickles that hold only plain data and NumPy arrays.

The CIFAR-10 "python version" batches are Python 2 pickles (protocol 2) of a
dict of strings, lists of ints and one uint8 NumPy array.  ``pickle.load`` on a
downloaded file would run any callable the file names; this module instead
interprets the pickle opcodes itself.  It builds only None, bools, ints,
floats, str, bytes, tuples, lists and dicts, and recognises exactly four
globals, which it never imports or calls but emulates:

* ``numpy(._)core.multiarray._reconstruct`` with ``numpy.ndarray`` and the
  ``BUILD`` state of an array -> ``np.frombuffer`` of the raw bytes;
* ``numpy.dtype`` of a plain numeric type code (``'u1'``, ``'<f4'``, ...);
* ``_codecs.encode(text, 'latin1')`` (how Python 3 writes bytes in protocol 2);
* ``numpy(._)core.numeric._frombuffer`` (protocol 5 arrays).

Any other global, object-building opcode (INST, OBJ, NEWOBJ, PERSID, EXT) or
malformed stream raises DataError naming the file and the byte offset.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from ..errors import DataError

__all__ = ["load_restricted_pickle"]

_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
}
_DTYPE_CODE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))")
_MAX_DEPTH = 64
_MARK = object()


class _Token:
    """One of the recognised globals, kept as a name: never imported, never called."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _Stub:
    """An array or dtype under construction: REDUCE made it, BUILD fills ``value``."""

    def __init__(self, kind: str, arg: object = None) -> None:
        self.kind, self.arg, self.value = kind, arg, None


class _Reader:
    """Opcode interpreter over a byte string (see the module docstring for what it accepts)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.pos = memoryview(data), name, 0
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.op_pos = 0

    # -- low level -------------------------------------------------------------------
    def fail(self, what: str) -> DataError:
        return DataError(f"{self.name}: {what} (pickle opcode at byte {self.op_pos})")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated: needs {n} bytes at byte {self.pos} but the data ends "
                            f"at byte {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def line(self) -> str:
        end = bytes(self.data[self.pos:self.pos + 256]).find(b"\n")
        if end < 0:
            raise self.fail("unterminated GLOBAL name")
        return bytes(self.take(end + 1)[:-1]).decode("ascii", "replace")

    def pop(self) -> object:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise self.fail("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list:
        if not self.marks:
            raise self.fail("missing MARK")
        start = self.marks.pop()
        items, self.stack[start:] = self.stack[start:], []
        return items

    # -- main loop --------------------------------------------------------------------
    def run(self) -> object:
        while True:
            self.op_pos = self.pos
            op = self.uint(1)
            if op == 0x2E:  # STOP
                if len(self.stack) != 1 or self.marks:
                    raise self.fail("STOP with a malformed stack")
                return self.stack[0]
            handler = _DISPATCH.get(op)
            if handler is None:
                raise self.fail(f"opcode {bytes([op])!r} is not accepted (only plain data and "
                                f"NumPy arrays may be stored)")
            handler(self, op)

    # -- opcodes ----------------------------------------------------------------------
    def op_proto(self, op: int) -> None:
        version = self.uint(1)
        if not 2 <= version <= 5:
            raise self.fail(f"pickle protocol {version} is not supported (2 to 5 are)")

    def op_frame(self, op: int) -> None:
        self.take(8)

    def op_const(self, op: int) -> None:
        self.stack.append({0x4E: None, 0x88: True, 0x89: False}[op])

    def op_int(self, op: int) -> None:
        if op == 0x4A:  # BININT: signed 4 bytes
            self.stack.append(int.from_bytes(self.take(4), "little", signed=True))
        else:  # BININT1 / BININT2: unsigned
            self.stack.append(self.uint(1 if op == 0x4B else 2))

    def op_long(self, op: int) -> None:
        n = self.uint(1 if op == 0x8A else 4)
        if n > 64:
            raise self.fail(f"integer of {n} bytes is too large")
        self.stack.append(int.from_bytes(self.take(n), "little", signed=True))

    def op_float(self, op: int) -> None:
        self.stack.append(struct.unpack(">d", self.take(8))[0])

    def op_bytes(self, op: int) -> None:
        width = {0x54: 4, 0x55: 1, 0x42: 4, 0x43: 1, 0x8E: 8, 0x96: 8}[op]
        n = int.from_bytes(self.take(width), "little", signed=op == 0x54)
        raw = bytes(self.take(n))
        self.stack.append(bytearray(raw) if op == 0x96 else raw)

    def op_unicode(self, op: int) -> None:
        n = self.uint({0x58: 4, 0x8C: 1, 0x8D: 8}[op])
        try:
            self.stack.append(str(self.take(n), "utf-8", "surrogatepass"))
        except UnicodeDecodeError as e:
            raise self.fail(f"invalid UTF-8 string: {e}") from e

    def op_empty(self, op: int) -> None:
        self.stack.append({0x7D: dict, 0x5D: list, 0x29: tuple}[op]())

    def op_mark(self, op: int) -> None:
        self.marks.append(len(self.stack))

    def op_tuple(self, op: int) -> None:
        if op == 0x74:
            self.stack.append(tuple(self.pop_mark()))
            return
        n = op - 0x84  # TUPLE1..TUPLE3
        items = [self.pop() for _ in range(n)][::-1]
        self.stack.append(tuple(items))

    def op_list_dict(self, op: int) -> None:
        items = self.pop_mark()
        if op == 0x6C:  # LIST
            self.stack.append(items)
        else:  # DICT
            self.stack.append(self.make_dict({}, items))

    def op_append(self, op: int) -> None:
        items = self.pop_mark() if op == 0x65 else [self.pop()]
        target = self.stack[-1] if self.stack else None
        if not isinstance(target, list):
            raise self.fail("APPEND onto something that is not a list")
        target.extend(items)

    def op_setitem(self, op: int) -> None:
        if op == 0x75:  # SETITEMS
            items = self.pop_mark()
        else:  # SETITEM
            value, key = self.pop(), self.pop()
            items = [key, value]
        target = self.stack[-1] if self.stack else None
        if not isinstance(target, dict):
            raise self.fail("SETITEM onto something that is not a dict")
        self.make_dict(target, items)

    def make_dict(self, target: dict, items: list) -> dict:
        if len(items) % 2:
            raise self.fail("odd number of items for a dict")
        for key, value in zip(items[::2], items[1::2]):
            if not isinstance(key, (str, bytes, int, float, bool, type(None))):
                raise self.fail(f"dict key of type {type(key).__name__} is not accepted")
            target[key] = value
        return target

    def op_put(self, op: int) -> None:
        if not self.stack:
            raise self.fail("memo PUT on an empty stack")
        key = len(self.memo) if op == 0x94 else self.uint(1 if op == 0x71 else 4)
        self.memo[key] = self.stack[-1]

    def op_get(self, op: int) -> None:
        key = self.uint(1 if op == 0x68 else 4)
        if key not in self.memo:
            raise self.fail(f"memo GET of unknown key {key}")
        self.stack.append(self.memo[key])

    def op_pop(self, op: int) -> None:
        if op == 0x31:  # POP_MARK
            self.pop_mark()
        elif op == 0x32:  # DUP
            top = self.pop()
            self.stack += [top, top]
        else:  # POP
            self.pop()

    def op_global(self, op: int) -> None:
        if op == 0x63:  # GLOBAL: "module\nname\n"
            module, name = self.line(), self.line()
        else:  # STACK_GLOBAL
            name, module = self.pop(), self.pop()
            if not isinstance(module, str) or not isinstance(name, str):
                raise self.fail("STACK_GLOBAL needs two strings")
        kind = _GLOBALS.get((module, name))
        if kind is None:
            raise self.fail(f"refusing global {module}.{name}: only plain data and NumPy arrays of "
                            f"numbers are accepted, nothing is ever imported or executed")
        self.stack.append(_Token(kind))

    def op_reduce(self, op: int) -> None:
        args, func = self.pop(), self.pop()
        if not isinstance(func, _Token) or not isinstance(args, tuple):
            raise self.fail("REDUCE of something that is not an accepted global")
        self.stack.append(_reduce(self, func.kind, args))

    def op_build(self, op: int) -> None:
        state, obj = self.pop(), self.pop()
        if not isinstance(obj, _Stub) or obj.value is not None:
            raise self.fail("BUILD of an object that is not a NumPy array or dtype")
        obj.value = _build_dtype(self, obj.arg, state) if obj.kind == "dtype" else _build_array(self, state)
        self.stack.append(obj)


def _text(value: object) -> object:
    """Python 2 ``str`` arrives as bytes; type codes and byte orders are ASCII."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def _reduce(reader: _Reader, kind: str, args: tuple) -> object:
    """Emulate the accepted callables on their arguments (nothing is imported)."""
    if kind == "reconstruct":
        if len(args) != 3 or not isinstance(args[0], _Token) or args[0].kind != "ndarray":
            raise reader.fail("_reconstruct is accepted only for numpy.ndarray")
        return _Stub("array")
    if kind == "dtype":
        code = _text(args[0]) if args else None
        if not isinstance(code, str) or not _DTYPE_CODE.fullmatch(code):
            raise reader.fail(f"dtype {args[:1]!r} is not accepted (plain numeric types only)")
        return _Stub("dtype", code)
    if kind == "encode":
        if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
            raise reader.fail("_codecs.encode is accepted only as encode(text, 'latin1')")
        return args[0].encode("latin1")
    if kind == "frombuffer" and len(args) == 4:
        buf, dtype, shape, order = args
        return _array_from(reader, buf, _resolve_dtype(reader, dtype), shape, order == "F")
    raise reader.fail(f"{kind} cannot be called with these arguments")


def _resolve_dtype(reader: _Reader, dtype: object) -> np.dtype:
    if isinstance(dtype, _Stub) and dtype.kind == "dtype" and dtype.value is not None:
        return dtype.value
    raise reader.fail("array dtype is not a plain numeric numpy.dtype")


def _build_dtype(reader: _Reader, code: str, state: object) -> np.dtype:
    """dtype state: (version, byteorder, subdtype, names, fields, elsize, alignment, flags)."""
    order = _text(state[1]) if isinstance(state, tuple) and len(state) >= 5 else None
    if order not in ("<", ">", "|", "=") or state[2:5] != (None, None, None):
        raise reader.fail("dtype state is not that of a plain numeric dtype")
    dtype = np.dtype(code)
    return dtype if order in ("|", "=") else dtype.newbyteorder(order)


def _build_array(reader: _Reader, state: object) -> np.ndarray:
    """ndarray state: (version, shape, dtype, is_fortran, raw bytes)."""
    if not (isinstance(state, tuple) and len(state) == 5):
        raise reader.fail("ndarray state is not (version, shape, dtype, fortran, data)")
    _, shape, dtype, fortran, raw = state
    return _array_from(reader, raw, _resolve_dtype(reader, dtype), shape, bool(fortran))


def _array_from(reader: _Reader, raw: object, dtype: np.dtype, shape: object,
                fortran: bool) -> np.ndarray:
    """Check the byte count against the shape, then view the bytes (copied: writable)."""
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)):
        raise reader.fail("array data is not a byte string (object arrays are refused)")
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise reader.fail(f"array shape {shape!r} is not a tuple of sizes")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected != len(raw):
        raise reader.fail(f"array of shape {shape} and dtype {dtype} needs {expected} bytes; "
                          f"the pickle holds {len(raw)}")
    flat = np.frombuffer(raw, dtype=dtype).copy()
    return flat.reshape(shape, order="F" if fortran else "C")  # shape from the pickle


def _finish(reader: _Reader, obj: object, done: dict[int, object], depth: int = 0) -> object:
    """Replace built stubs by their arrays / dtypes; refuse anything unfinished or cyclic.

    Containers are converted once each (``done`` maps id -> result), so data shared
    through the memo stays shared and a pickle of nested shared lists cannot make
    this walk exponential.
    """
    if depth > _MAX_DEPTH:
        raise reader.fail(f"data nested more than {_MAX_DEPTH} levels deep (or cyclic)")
    if isinstance(obj, _Stub):
        if obj.value is None:
            raise reader.fail(f"NumPy {obj.kind} was never built")
        return obj.value
    if isinstance(obj, _Token):
        raise reader.fail(f"a bare global ({obj.kind}) is not plain data")
    if not isinstance(obj, (list, tuple, dict)):
        return obj
    if id(obj) in done:
        return done[id(obj)]
    if isinstance(obj, dict):
        out = {k: _finish(reader, v, done, depth + 1) for k, v in obj.items()}
    else:
        out = type(obj)(_finish(reader, v, done, depth + 1) for v in obj)
    done[id(obj)] = out
    return out


_DISPATCH = {}
for _codes, _method in (
    ((0x80,), _Reader.op_proto), ((0x95,), _Reader.op_frame),
    ((0x4E, 0x88, 0x89), _Reader.op_const), ((0x4A, 0x4B, 0x4D), _Reader.op_int),
    ((0x8A, 0x8B), _Reader.op_long), ((0x47,), _Reader.op_float),
    ((0x54, 0x55, 0x42, 0x43, 0x8E, 0x96), _Reader.op_bytes),
    ((0x58, 0x8C, 0x8D), _Reader.op_unicode), ((0x7D, 0x5D, 0x29), _Reader.op_empty),
    ((0x28,), _Reader.op_mark), ((0x74, 0x85, 0x86, 0x87), _Reader.op_tuple),
    ((0x6C, 0x64), _Reader.op_list_dict), ((0x61, 0x65), _Reader.op_append),
    ((0x73, 0x75), _Reader.op_setitem), ((0x71, 0x72, 0x94), _Reader.op_put),
    ((0x68, 0x6A), _Reader.op_get), ((0x30, 0x31, 0x32), _Reader.op_pop),
    ((0x63, 0x93), _Reader.op_global), ((0x52,), _Reader.op_reduce), ((0x62,), _Reader.op_build),
):
    for _code in _codes:
        _DISPATCH[_code] = _method


def load_restricted_pickle(data: bytes, name: str = "<pickle>") -> object:
    """Decode a pickle of plain data and numeric NumPy arrays without executing anything.

    Args:
        data: the pickle's bytes (protocol 2 to 5).
        name: shown in error messages (a file or tar member name).

    Returns:
        The object: dicts, lists, tuples, str, bytes (Python 2 ``str`` stays bytes),
        numbers, None and NumPy arrays.

    Raises:
        DataError: a refused global or opcode, or a truncated / malformed stream,
            with the byte offset.
    """
    reader = _Reader(data, name)
    try:
        result = reader.run()
    except (IndexError, RecursionError) as e:
        raise reader.fail(f"malformed pickle ({e})") from e
    return _finish(reader, result, {})
