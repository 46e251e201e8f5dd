"""LossClient against a real server (SSL_LOSS_URL): every shared fixture through the kind's own
method, dtypes of inputs and gradients, seeds and draws, and errors with code and path."""
import unittest

import numpy as np

from ssl_loss_client import LossClient, LossServerError
from support import api_key, array, fixtures, rel_close, rel_err_norm, server_url


def call_fixture(client, f):
    """A fixture's request through the kind's method (not the generic evaluate)."""
    req = f['request']
    cfg, opts, ins = req.get('config', {}), req.get('options', {}), req['inputs']
    if f['kind'] == 'feature-map-contrastive':
        return client.feature_map_contrastive([array(t) for t in ins['anchor']], [array(t) for t in ins['positive']],
                                              pairs=opts.get('pairs'), locations=opts.get('locations'),
                                              seed=opts.get('seed'), **cfg)
    if f['kind'] == 'amdim-nce':
        return client.amdim_nce(array(ins['anchor']), array(ins['positive']), **cfg)
    if f['kind'] == 'nt-xent':
        return client.nt_xent(array(ins['out_1']), array(ins['out_2']), normalize=opts.get('normalize'), **cfg)
    if f['kind'] == 'cpc':
        params = {k: array(v) for k, v in req['params'].items()}
        cfg = dict(cfg)
        return client.cpc(array(ins['z']), params, param_grads=opts.get('param_grads', False), **cfg)
    raise AssertionError(f'unknown kind {f["kind"]}')


class Fixtures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = LossClient(server_url(cls), api_key())
        cls.fixtures = fixtures()

    def test_every_fixture_through_its_kinds_method(self):
        kinds = set()
        for f in self.fixtures:
            with self.subTest(f['name']):
                kinds.add(f['kind'])
                r = call_fixture(self.client, f)
                e = f['expected']
                self.assertTrue(rel_close(r.loss, e['loss']), f'loss {r.loss} vs {e["loss"]}')
                for name, ref in (e.get('terms') or {}).items():
                    got = r.terms[name]
                    if isinstance(ref, list):
                        self.assertEqual(len(got), len(ref))
                        self.assertTrue(all(rel_close(g, x) for g, x in zip(got, ref)), f'terms.{name} {got} vs {ref}')
                    else:
                        self.assertTrue(rel_close(got, ref), f'terms.{name} {got} vs {ref}')
                for name, ref in e['grads'].items():
                    refs, gots = (ref, r.grads[name]) if isinstance(ref, list) else ([ref], [r.grads[name]])
                    self.assertEqual(len(gots), len(refs))
                    for g, x in zip(gots, refs):
                        self.assertIsInstance(g, np.ndarray)
                        self.assertEqual(list(g.shape), x['shape'])
                        self.assertLessEqual(rel_err_norm(g, x['data']), 1e-4, f'grads.{name}')
                for s in e.get('param_grads_sampled') or []:
                    v = float(r.param_grads[s['name']].ravel()[s['index']])
                    self.assertLessEqual(abs(v - s['value']), 1e-6 + 1e-3 * abs(s['value']), s['name'])
                self.assertIsInstance(r.meta.get('worker'), int)
        self.assertEqual(kinds, {'feature-map-contrastive', 'amdim-nce', 'nt-xent', 'cpc'})


class Behaviour(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = LossClient(server_url(cls), api_key())
        cls.rng = np.random.default_rng(7)

    def maps(self, sizes=(1, 3, 4), b=3, c=5, dtype=np.float32):
        return [self.rng.standard_normal((b, c, s, s)).astype(dtype) for s in sizes]

    def test_gradients_come_back_in_each_inputs_dtype_unless_grad_dtype_says(self):
        o1 = self.rng.standard_normal((4, 6))
        o2 = self.rng.standard_normal((4, 6))
        r = self.client.nt_xent(o1.astype(np.float16), o2.astype(np.float64))
        self.assertEqual((r.grads['out_1'].dtype, r.grads['out_2'].dtype), (np.float16, np.float64))
        r32 = self.client.nt_xent(o1.astype(np.float16), o2.astype(np.float64), grad_dtype='float32')
        self.assertEqual(r32.grads['out_1'].dtype, np.float32)
        self.assertLessEqual(rel_err_norm(r.grads['out_1'], r32.grads['out_1']), 2e-3)  # float16 rounding only
        rb = self.client.nt_xent(o1, o2, dtype='bfloat16')
        self.assertEqual(rb.grad_dtypes, {'out_1': 'bfloat16', 'out_2': 'bfloat16'})
        self.assertEqual(rb.grads['out_1'].dtype, np.float32)  # widened: NumPy has no bfloat16
        self.assertLessEqual(rel_err_norm(rb.grads['out_1'], r32.grads['out_1']), 5e-2)

    def test_a_seed_reproduces_the_draws_and_sampled_replays_them(self):
        a, p = self.maps(), self.maps()
        r1 = self.client.feature_map_contrastive(a, p, 'r1, 2r', seed=11)
        r2 = self.client.feature_map_contrastive(a, p, 'r1, 2r', seed=11)
        self.assertEqual(r1.sampled['pairs'], r2.sampled['pairs'])
        self.assertEqual(r1.sampled['locations'], r2.sampled['locations'])
        self.assertEqual(r1.loss, r2.loss)
        replay = self.client.feature_map_contrastive(a, p, 'r1, 2r', pairs=r1.sampled['pairs'], locations=r1.sampled['locations'])
        self.assertTrue(rel_close(replay.loss, r1.loss))
        for g, h in zip(replay.grads['anchor'], r1.grads['anchor']):
            self.assertLessEqual(rel_err_norm(g, h), 1e-6)

    def test_defaults_are_bolts_and_tclip_none_means_no_clipping(self):
        a = self.rng.standard_normal((3, 4)).astype(np.float32) * 30
        p = self.rng.standard_normal((4, 6)).astype(np.float32) * 30
        clipped = self.client.amdim_nce(a, p)  # tclip 10 (Bolts)
        same = self.client.amdim_nce(a, p, tclip=10.0)
        unclipped = self.client.amdim_nce(a, p, tclip=None)
        self.assertEqual(clipped.loss, same.loss)
        self.assertNotAlmostEqual(clipped.terms['nce'], unclipped.terms['nce'], places=3)

    def test_gradients_false_leaves_them_out(self):
        r = self.client.nt_xent(self.rng.standard_normal((3, 4)), self.rng.standard_normal((3, 4)), gradients=False)
        self.assertEqual(r.grads, {})
        self.assertGreater(r.loss, 0)

    def test_torch_style_inputs_and_lists_are_accepted(self):
        r = self.client.nt_xent([[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.5, -0.5]], temperature=0.5)
        self.assertEqual(r.grads['out_1'].shape, (2, 2))

    def test_errors_carry_status_code_message_and_path(self):
        a, p = self.maps(), self.maps()
        p[1] = p[1][:, :, :2]
        with self.assertRaises(LossServerError) as cm:
            self.client.feature_map_contrastive(a, p)
        e = cm.exception
        self.assertEqual((e.status, e.code), (400, 'shape_mismatch'))
        self.assertEqual(e.path[:3], ['inputs', 'positive', 1])
        self.assertIn('[3, 5, 2, 3]', e.message)
        with self.assertRaises(LossServerError) as cm:
            self.client.feature_map_contrastive(a, self.maps(), comparisons='0x')
        self.assertEqual((cm.exception.code, cm.exception.path), ('invalid_config', ['config', 'comparisons']))
        bad = self.rng.standard_normal((3, 4)).astype(np.float32)
        bad[1, 2] = np.nan
        with self.assertRaises(LossServerError) as cm:
            self.client.nt_xent(bad, bad)
        self.assertEqual(cm.exception.code, 'non_finite')
        self.assertEqual(cm.exception.path[:2], ['inputs', 'out_1'])
        with self.assertRaises(LossServerError) as cm:
            self.client.evaluate('simclr', {})
        self.assertEqual((cm.exception.status, cm.exception.code), (404, 'unknown_kind'))

    def test_ready(self):
        self.assertTrue(self.client.ready())
        self.assertFalse(LossClient('http://127.0.0.1:9', timeout=2).ready())


if __name__ == '__main__':
    unittest.main()
