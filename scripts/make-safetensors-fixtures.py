#!/usr/bin/env python3
"""Writes the safetensors files test/store/safetensors.test.ts reads, with the Python package.

  python3 scripts/make-safetensors-fixtures.py [OUT_DIR]   (default test/fixtures-local/safetensors)

torch-state.safetensors   safetensors.torch.save_file of a PyTorch-layout state dict (Conv2d,
                          Linear, BatchNorm keys) in F32, F16, BF16 and F64, plus edge values
numpy-state.safetensors   safetensors.numpy.save_file: F32, F16, F64, a 0-d and an empty tensor
expected.json             per file: metadata and, per tensor, dtype, shape and the float32 bit
                          patterns of its values (torch's / NumPy's own conversion to float32),
                          so NaN and -0 compare exactly
Only one metadata key per file: the package keeps metadata in a Rust HashMap, whose order (and
so the file's bytes) would otherwise change from run to run.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import save_file as torch_save_file

EDGE = [0.0, -0.0, 1.0, -2.5, float('inf'), float('-inf'), float('nan'), 65504.0, 2.0 ** -24, 1e-40, 3.14159265358979]


def bits(values):
    """float32 bit patterns of float32 values (uint32)."""
    return np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def describe(tensors, as_float32):
    return {name: {'dtype': dtype, 'shape': list(t.shape), 'bits': bits(as_float32(t))} for name, (dtype, t) in tensors.items()}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures-local', 'safetensors')
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 1)
    lin = torch.nn.Linear(3, 2)
    bn = torch.nn.BatchNorm2d(3)
    sd = {}
    for prefix, m in (('encoder.0', conv), ('head', lin), ('encoder.1', bn)):
        for k, v in m.state_dict().items():
            if v.is_floating_point():
                sd[f'{prefix}.{k}'] = ('F32', v.detach().clone())
    sd['head.weight.half'] = ('F16', lin.weight.detach().to(torch.float16))
    sd['head.weight.bf16'] = ('BF16', lin.weight.detach().to(torch.bfloat16))
    sd['head.weight.f64'] = ('F64', lin.weight.detach().to(torch.float64) / 3)
    sd['edge.f32'] = ('F32', torch.tensor(EDGE, dtype=torch.float32))
    sd['edge.f16'] = ('F16', torch.tensor(EDGE, dtype=torch.float16))
    sd['edge.bf16'] = ('BF16', torch.tensor(EDGE, dtype=torch.bfloat16))
    sd['edge.f64'] = ('F64', torch.tensor(EDGE + [1e300, 2.0 ** -149, 0.1], dtype=torch.float64))
    torch_save_file({k: t for k, (_, t) in sd.items()}, os.path.join(out, 'torch-state.safetensors'), metadata={'format': 'pt'})

    nd = {
        'w': ('F32', np.arange(12, dtype=np.float32).reshape(3, 2, 2) / 7),
        'h': ('F16', np.array([[0.1, -0.2], [1000, 6e-8]], dtype=np.float16)),
        'd': ('F64', np.array([1 / 3, -1e-300, 123456789.123], dtype=np.float64)),
        'scalar': ('F32', np.array(2.5, dtype=np.float32)),
        'empty': ('F32', np.zeros((0, 3), dtype=np.float32)),
    }
    np_save_file({k: a for k, (_, a) in nd.items()}, os.path.join(out, 'numpy-state.safetensors'), metadata={'format': 'np'})

    expected = {
        'torch-state.safetensors': {'metadata': {'format': 'pt'}, 'tensors': describe(sd, lambda t: t.float().numpy())},
        'numpy-state.safetensors': {'metadata': {'format': 'np'}, 'tensors': describe(nd, lambda a: a.astype(np.float32))},
    }
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
