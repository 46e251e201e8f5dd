"""Tensors to and from the wire format of ssl-loss-server.

The format is normative in ../shared/spec/API.md ("Tensors") and spelled out byte by byte in
docs/wire-format.md: a map {dtype, shape, data} with `data` the little-endian, row-major
bytes of the elements (msgpack bin) or a flat list of numbers (JSON).

NumPy arrays travel as float32 / float16 / float64 as they are (other dtypes become float32).
torch tensors travel in their own dtype without a conversion, bfloat16 included: NumPy has no
bfloat16, so its 16-bit patterns are sent as raw bytes (the upper half of a float32).
Gradients come back as NumPy; bfloat16 ones are widened to float32 (exact: every bfloat16
is a float32).
"""
import numpy as np

WIRE_DTYPES = ('float32', 'float16', 'bfloat16', 'float64')
_ITEMSIZE = {'float32': 4, 'float16': 2, 'bfloat16': 2, 'float64': 8}


def is_torch_tensor(x):
    """True for a torch.Tensor, without importing torch when the caller never did."""
    t = type(x)
    return t.__module__.startswith('torch') and hasattr(x, 'detach') and hasattr(x, 'dtype')


def _torch_to_wire(x):
    import torch
    t = x.detach()
    if t.device.type != 'cpu':
        t = t.cpu()
    t = t.contiguous()
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        t = t.to(torch.float32)
    name = str(t.dtype).removeprefix('torch.')
    shape = list(t.shape)
    if t.numel() == 0:
        return {'dtype': name, 'shape': shape, 'data': b''}
    # a view of the same bytes, no rounding (bfloat16 has no NumPy dtype; int16 does)
    if t.dtype == torch.bfloat16:
        raw = t.reshape(-1).view(torch.int16).numpy()
    else:
        raw = t.reshape(-1).numpy()
    return {'dtype': name, 'shape': shape, 'data': raw.astype(raw.dtype.newbyteorder('<'), copy=False).tobytes()}


def to_wire(x, dtype=None):
    """A NumPy array, torch tensor, number or nested list as a wire tensor (msgpack form).

    dtype: force 'float32' / 'float16' / 'float64' (NumPy conversion); None keeps float16,
    float32, float64 (and torch's bfloat16) as they are and makes anything else float32.
    """
    if dtype is not None and dtype not in WIRE_DTYPES:
        raise ValueError(f'dtype {dtype!r} is not one of {", ".join(WIRE_DTYPES)}')
    if is_torch_tensor(x):
        if dtype is None or dtype == str(x.dtype).removeprefix('torch.'):
            return _torch_to_wire(x)
        import torch
        return _torch_to_wire(x.detach().to(getattr(torch, dtype)))
    if dtype == 'bfloat16':
        return bfloat16_wire(np.asarray(x, dtype=np.float32))
    a = np.asarray(x)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    elif a.dtype.name not in ('float32', 'float16', 'float64'):
        a = a.astype(np.float32)
    a = np.asarray(a, dtype=a.dtype.newbyteorder('<'), order='C')  # ascontiguousarray makes 0-d arrays 1-d
    return {'dtype': a.dtype.name, 'shape': list(a.shape), 'data': a.tobytes()}


def bfloat16_wire(a):
    """float32 NumPy values rounded to bfloat16 (nearest, ties to even, as torch does) on the wire."""
    a = np.asarray(a, dtype='<f4', order='C')
    u = a.view('<u4').astype(np.uint64)
    nan = np.isnan(a)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype('<u2')
    rounded[nan] = 0x7FC0
    return {'dtype': 'bfloat16', 'shape': list(a.shape), 'data': rounded.tobytes()}


def from_wire(t, where='tensor'):
    """A wire tensor (msgpack bytes or JSON numbers) as a writable NumPy array.

    float16 / float32 / float64 keep their dtype; bfloat16 is widened to float32.
    """
    if not isinstance(t, dict) or not {'dtype', 'shape', 'data'} <= t.keys():
        raise ValueError(f'{where}: not a wire tensor {{dtype, shape, data}}: {type(t).__name__}')
    dtype, shape, data = t['dtype'], [int(s) for s in t['shape']], t['data']
    if dtype not in WIRE_DTYPES:
        raise ValueError(f'{where}: dtype {dtype!r} is not one of {", ".join(WIRE_DTYPES)}')
    if isinstance(data, list):  # JSON form: the numbers themselves
        out_dtype = 'float32' if dtype == 'bfloat16' else dtype
        return np.array(data, dtype=out_dtype).reshape(shape)
    n = int(np.prod(shape, dtype=np.int64))
    if len(data) != n * _ITEMSIZE[dtype]:
        raise ValueError(f'{where}: {len(data)} bytes for shape {shape} of {dtype} (expected {n * _ITEMSIZE[dtype]})')
    if dtype == 'bfloat16':
        u = np.frombuffer(data, dtype='<u2').astype('<u4') << 16
        return u.view('<f4').astype(np.float32).reshape(shape)
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder('<')).astype(dtype).reshape(shape)


def raw_bits(t):
    """The element bits of a wire tensor as a flat uint16/uint32/uint64 array (for exact checks)."""
    return np.frombuffer(t['data'], dtype={2: '<u2', 4: '<u4', 8: '<u8'}[_ITEMSIZE[t['dtype']]])


def map_tree(fn, tree, path=()):
    """Applies fn(leaf, path) to every tensor of an inputs / grads tree: a dict of tensors or lists of tensors."""
    if isinstance(tree, dict) and not {'dtype', 'shape', 'data'} <= tree.keys():
        return {k: map_tree(fn, v, path + (k,)) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not _is_number_list(tree):
        return [map_tree(fn, v, path + (i,)) for i, v in enumerate(tree)]
    return fn(tree, path)


def _is_number_list(x):
    # a plain nested list of numbers is one tensor, a list of arrays is a list of tensors
    first = x[0] if len(x) else None
    while isinstance(first, (list, tuple)) and len(first):
        first = first[0]
    return isinstance(first, (int, float)) or len(x) == 0
