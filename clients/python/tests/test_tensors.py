"""Wire tensors (docs/wire-format.md): bytes, dtypes, shapes, bfloat16 both ways. No server needed."""
import unittest

import numpy as np

from ssl_loss_client.tensors import bfloat16_wire, from_wire, map_tree, raw_bits, to_wire

try:
    import torch
except Exception as e:  # noqa: BLE001
    torch = None
    TORCH_REASON = f'torch does not import: {type(e).__name__}: {e}'


class NumpyWire(unittest.TestCase):
    def test_float32_bytes_are_little_endian_row_major(self):
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        w = to_wire(a)
        self.assertEqual(w['dtype'], 'float32')
        self.assertEqual(w['shape'], [2, 3])
        self.assertEqual(w['data'], np.arange(6, dtype='<f4').tobytes())

    def test_non_contiguous_and_big_endian_inputs_are_laid_out_c_order(self):
        a = np.arange(12, dtype='>f4').reshape(3, 4).T  # transposed, big-endian
        w = to_wire(a)
        self.assertEqual(w['shape'], [4, 3])
        np.testing.assert_array_equal(np.frombuffer(w['data'], '<f4').reshape(4, 3), a.astype('<f4'))

    def test_dtypes_kept_or_made_float32(self):
        self.assertEqual(to_wire(np.zeros(2, np.float16))['dtype'], 'float16')
        self.assertEqual(to_wire(np.zeros(2, np.float64))['dtype'], 'float64')
        self.assertEqual(to_wire(np.zeros(2, np.int64))['dtype'], 'float32')
        self.assertEqual(to_wire([[1, 2], [3, 4]])['shape'], [2, 2])
        self.assertEqual(to_wire(np.zeros(3, np.float64), 'float32')['data'], bytes(12))
        with self.assertRaisesRegex(ValueError, "'int8' is not one of"):
            to_wire(np.zeros(2), 'int8')

    def test_round_trip_each_dtype(self):
        a = np.array([[1.5, -2.25], [3e-3, 65504.0]])
        for dt in ('float16', 'float32', 'float64'):
            back = from_wire(to_wire(a.astype(dt)))
            self.assertEqual(back.dtype, np.dtype(dt))
            np.testing.assert_array_equal(back, a.astype(dt))
            back[0, 0] = 7  # writable, not a view of the answer's bytes

    def test_bfloat16_rounds_to_nearest_even_and_widens_exactly(self):
        # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa (1.0) wins; 1 + 3*2^-8 rounds up
        a = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.0, np.nan, 3.0e38], dtype=np.float32)
        w = bfloat16_wire(a)
        self.assertEqual(w['dtype'], 'bfloat16')
        self.assertEqual(len(w['data']), 2 * a.size)
        back = from_wire(w)
        self.assertEqual(back.dtype, np.float32)
        np.testing.assert_array_equal(back[:4], np.array([1.0, 1.0, 1 + 2 ** -6, -2.0], np.float32))
        self.assertTrue(np.isnan(back[4]))
        self.assertEqual(raw_bits(w)[0], 0x3F80)
        self.assertEqual(to_wire(a, 'bfloat16')['data'], w['data'])

    def test_empty_and_scalar(self):
        self.assertEqual(to_wire(np.zeros((0, 3), np.float32))['data'], b'')
        self.assertEqual(from_wire(to_wire(np.zeros((0, 3), np.float32))).shape, (0, 3))
        self.assertEqual(from_wire(to_wire(np.float32(2.5))).shape, ())

    def test_json_form_is_decoded(self):
        self.assertEqual(from_wire({'dtype': 'bfloat16', 'shape': [2], 'data': [1.0, 2.0]}).dtype, np.float32)
        np.testing.assert_array_equal(from_wire({'dtype': 'float64', 'shape': [1, 2], 'data': [1, 2]}), [[1.0, 2.0]])

    def test_bad_wire_tensors_name_what_is_wrong(self):
        with self.assertRaisesRegex(ValueError, r'grads.x: 3 bytes for shape \[2\] of float16 \(expected 4\)'):
            from_wire({'dtype': 'float16', 'shape': [2], 'data': b'abc'}, 'grads.x')
        with self.assertRaisesRegex(ValueError, "dtype 'int32'"):
            from_wire({'dtype': 'int32', 'shape': [1], 'data': b'abcd'})
        with self.assertRaisesRegex(ValueError, 'not a wire tensor'):
            from_wire([1, 2])

    def test_map_tree_keeps_lists_of_maps_and_nested_number_lists(self):
        tree = {'anchor': [np.zeros((1, 1)), np.ones((1, 2))], 'z': [[1.0, 2.0]]}
        paths = []
        map_tree(lambda x, p: paths.append(p), tree)
        self.assertEqual(paths, [('anchor', 0), ('anchor', 1), ('z',)])


@unittest.skipIf(torch is None, globals().get('TORCH_REASON', ''))
class TorchWire(unittest.TestCase):
    def test_each_torch_dtype_travels_as_its_own_bytes(self):
        x = torch.tensor([[1.0, -2.5], [1 / 3, 1e-3]])
        for dt, name in ((torch.float32, 'float32'), (torch.float16, 'float16'), (torch.bfloat16, 'bfloat16'), (torch.float64, 'float64')):
            w = to_wire(x.to(dt))
            self.assertEqual(w['dtype'], name)
            self.assertEqual(w['shape'], [2, 2])
            expect = x.to(dt).reshape(-1).view(torch.uint8).numpy().tobytes()
            self.assertEqual(w['data'], expect, name)
            np.testing.assert_array_equal(from_wire(w), x.to(dt).to(torch.float32 if name == 'bfloat16' else dt).numpy())

    def test_numpy_bfloat16_rounding_equals_torch(self):
        a = np.random.default_rng(1).standard_normal(1000).astype(np.float32) * 1e3
        self.assertEqual(bfloat16_wire(a)['data'], to_wire(torch.from_numpy(a).to(torch.bfloat16))['data'])

    def test_non_contiguous_tensor_with_grad(self):
        x = torch.arange(6.0, requires_grad=True).reshape(2, 3).t()
        w = to_wire(x)
        self.assertEqual(w['shape'], [3, 2])
        np.testing.assert_array_equal(from_wire(w), x.detach().numpy())


if __name__ == '__main__':
    unittest.main()
