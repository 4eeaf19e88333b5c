"""Loading PyTorch checkpoints without running pickled code.

A .pt/.pth file is a pickle, and unpickling calls whatever globals the file
names: `os.system`, `builtins.eval`, any class's constructor. The importers
load files that come from elsewhere, so they unpickle through
`RestrictedUnpickler`, whose `find_class` resolves only the globals of an
explicit allow-list, each mapped to a definition chosen here (the original
design's classes go to the project's own re-definitions), and refuses every
other name before anything is called.

  load_checkpoint(path, allowed)   -> the unpickled object
  TENSOR_GLOBALS                   -> what a plain state dict needs

The zip archive torch.save writes (data.pkl + data/<key> raw storages) is
read here, without torch.load (see load_checkpoint).
"""
import _compat_pickle
import collections
import io
import pickle
import zipfile

import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file names a global outside the allow-list (nothing was called)."""

    def __init__(self, path, module, name, allowed_desc):
        self.path, self.module, self.name = path, module, name
        super().__init__(
            f"refusing {path}: its pickle names the global '{module}.{name}', which is not part of {allowed_desc}. "
            "Nothing from the file was executed. (A checkpoint of this kind holds only "
            "tensors and the model's own classes; anything else could run code when loaded.)")


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """Protocol 2 pickles bytes (numpy array data) as _codecs.encode(str, 'latin1');
    only that use is allowed (no other codec is looked up)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1", errors)


def _tensor_globals():
    g = {
        ("_codecs", "encode"): _latin1_encode,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("torch", "Size"): torch.Size,
    }
    if hasattr(torch._utils, "_rebuild_parameter_with_state"):
        g[("torch._utils", "_rebuild_parameter_with_state")] = torch._utils._rebuild_parameter_with_state
    # dtypes are pickled as globals by newer torch versions (torch.float16 ...)
    for dt in ("float16", "float32", "float64", "bfloat16", "int64", "int32", "uint8", "bool"):
        g[("torch", dt)] = getattr(torch, dt)
    return g


def _numpy_globals():
    """numpy arrays and scalars (yolov5's best_fitness, for one). Only plain
    reconstruction: ndarray.__setstate__ and numpy scalars build data, they
    call nothing the file names."""
    try:
        import numpy as np
    except ImportError:
        return {}
    g = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    core = getattr(np, "core", None)
    ma = getattr(core, "multiarray", None) if core is not None else None
    if ma is not None:
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            g[(mod, "_reconstruct")] = ma._reconstruct
            g[(mod, "scalar")] = ma.scalar
    return g


TENSOR_GLOBALS = {**_tensor_globals(), **_numpy_globals()}


def _canonical(module, name):
    """Protocol-2 pickles (torch.save's default) write Python 2 names
    (`__builtin__.set`); map them back as pickle's own find_class would."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


# torch.save names each tensor's storage by its legacy typed class.
STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in `allowed` ({(module, name): object}) and
    torch's storage type names; reads tensor data from the zip archive."""

    def __init__(self, file, allowed, path, allowed_desc, read_storage):
        super().__init__(file)
        self._allowed, self._path, self._desc, self._read_storage = allowed, path, allowed_desc, read_storage

    def find_class(self, module, name):
        key = _canonical(module, name)
        if key in self._allowed:
            return self._allowed[key]
        if key[0] == "torch" and key[1] in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[key[1]])
        raise UnsafeCheckpointError(self._path, module, name, self._desc)

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] in ("storage", b"storage")
                and isinstance(saved_id[1], _StorageType)):
            raise pickle.UnpicklingError(f"{self._path}: unexpected persistent id {saved_id!r:.80}")
        _, storage_type, key, _location, numel = saved_id
        return self._read_storage(str(key), storage_type.dtype, int(numel))


def load_checkpoint(path, allowed, allowed_desc="this checkpoint format"):
    """The object a torch.save()d file holds (torch >= 1.6's zip format),
    tensors on the CPU, resolving only the globals in `allowed`.

    Reads the archive itself rather than through torch.load, which in this
    torch (1.13) replaces a given pickle_module by the unrestricted one and
    dispatches TorchScript archives to torch.jit.load.
    Raises UnsafeCheckpointError (naming the global; nothing was called),
    ValueError for a file that is not such an archive (the pre-1.6 format, a
    bare pickle, TorchScript), FileNotFoundError, or pickle/zip errors for a
    corrupt file."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a PyTorch (>= 1.6) zip checkpoint; bare pickles and the legacy "
                         "pre-1.6 format are not read (re-save it with torch.save in torch >= 1.6)")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise ValueError(f"{path}: no data.pkl record: not a torch.save() archive")
        prefix = pkl[0][: -len("data.pkl")]
        if any(n.startswith(prefix + "code/") for n in names) or prefix + "constants.pkl" in names:
            raise ValueError(f"{path} is a TorchScript archive (torch.jit.save), not a checkpoint; it is not read")
        cache = {}

        def read_storage(key, dtype, numel):
            if key not in cache:
                raw = bytearray(zf.read(prefix + "data/" + key))
                itemsize = torch.empty((), dtype=dtype).element_size()
                if len(raw) != numel * itemsize:
                    raise pickle.UnpicklingError(f"{path}: storage {key} holds {len(raw)} bytes, expected "
                                                 f"{numel} x {itemsize}")
                cache[key] = (torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)).storage()
            return cache[key]

        with zf.open(pkl[0]) as f:
            return RestrictedUnpickler(io.BytesIO(f.read()), allowed, path, allowed_desc, read_storage).load()
