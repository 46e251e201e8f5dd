"""RemoteLoss (torch_adapter.py) against a real server (SSL_LOSS_URL): a tiny encoder trained
for a few steps through the adapter gets the gradients that the same loss computed in-process
with torch gives it (bench/peer.py's implementations of LOSSES.md, fed the server's draws).
Skipped, with the reason printed, where torch does not import."""
import copy
import os
import sys
import unittest

import numpy as np

from support import api_key, REPO, rel_close, rel_err_norm, server_url

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
    TORCH_SKIP = None
except Exception as e:  # noqa: BLE001 - any import failure means no usable torch
    TORCH_SKIP = f'torch does not import ({type(e).__name__}: {e}); the adapter tests need it'

if TORCH_SKIP is None:
    sys.path.insert(0, os.path.join(REPO, 'bench'))
    import peer  # noqa: E402 - the in-process torch reference (bench/peer.py)
    from ssl_loss_client import RemoteLoss  # noqa: E402

    class TinyEncoder(nn.Module):
        """Images (b, 3, 8, 8) to AMDIM-style maps 1x1, 3x3, 5x5 of 16 channels."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
            self.head = nn.Conv2d(16, 16, 1)

        def forward(self, x):
            h = F.relu(self.conv1(x))
            h = F.relu(self.conv2(h))
            m5 = self.head(F.adaptive_avg_pool2d(h, 5))
            m3 = self.head(F.adaptive_avg_pool2d(h, 3))
            m1 = self.head(h.mean(dim=(2, 3), keepdim=True))
            return [m1, m3, m5]


def assert_grads_equal(test, remote_model, local_model, rtol=1e-4, what=''):
    """Every parameter's gradient: elementwise rtol 1e-4 (atol 1e-4 of the largest entry, so
    entries that cancel to ~0 are judged against the tensor's scale) and norm-wise <= 1e-4."""
    for (name, pr), (_, pl) in zip(remote_model.named_parameters(), local_model.named_parameters()):
        test.assertIsNotNone(pr.grad, f'{what}{name}: no gradient reached the encoder')
        scale = pl.grad.abs().max().item()
        torch.testing.assert_close(pr.grad, pl.grad, rtol=rtol, atol=rtol * scale, msg=lambda m: f'{what}{name}: {m}')
        test.assertLessEqual(rel_err_norm(pr.grad.numpy(), pl.grad.numpy()), rtol, f'{what}{name}')


@unittest.skipIf(TORCH_SKIP is not None, TORCH_SKIP)
class TorchAdapter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.remote = RemoteLoss(server_url(cls), api_key())
        torch.manual_seed(0)

    def test_a_tiny_encoder_trains_with_the_gradients_of_in_process_torch(self):
        torch.manual_seed(1)
        enc_remote = TinyEncoder()
        enc_local = copy.deepcopy(enc_remote)
        opt_remote = torch.optim.SGD(enc_remote.parameters(), lr=0.05)
        opt_local = torch.optim.SGD(enc_local.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(2)
        losses = []
        for step in range(4):
            images = torch.randn(6, 3, 8, 8, generator=gen)
            view1 = images + 0.1 * torch.randn(images.shape, generator=gen)
            view2 = images + 0.1 * torch.randn(images.shape, generator=gen)
            opt_remote.zero_grad()
            opt_local.zero_grad()

            loss = self.remote.feature_map_contrastive(enc_remote(view1), enc_remote(view2), comparisons='01, 02, 11')
            loss.backward()
            sampled = self.remote.last.sampled

            # the same loss in-process, with the server's draws (pairs and locations)
            ref, terms, _ = peer.feature_map_contrastive(enc_local(view1), enc_local(view2), '01, 02, 11', 10.0, True,
                                                         sampled['pairs'], sampled['locations'], None)
            ref.backward()

            self.assertEqual(loss.dtype, torch.float32)
            self.assertEqual(loss.shape, ())
            self.assertTrue(rel_close(loss.item(), ref.item(), rtol=1e-4), f'step {step}: loss {loss.item()} vs {ref.item()}')
            for got, want in zip(self.remote.last.terms['losses'], terms['losses'].tolist()):
                self.assertTrue(rel_close(got, want, rtol=1e-4), f'step {step}: {got} vs {want}')
            assert_grads_equal(self, enc_remote, enc_local, what=f'step {step}: ')
            opt_remote.step()
            opt_local.step()
            losses.append(loss.item())
        for pr, pl in zip(enc_remote.parameters(), enc_local.parameters()):
            torch.testing.assert_close(pr, pl, rtol=1e-4, atol=1e-6)
        self.assertTrue(all(np.isfinite(losses)))

    def test_a_seed_makes_the_remote_draws_repeatable(self):
        maps = [torch.randn(4, 8, s, s, requires_grad=True) for s in (1, 3)]
        pos = [torch.randn(4, 8, s, s) for s in (1, 3)]
        l1 = self.remote.feature_map_contrastive(maps, pos, comparisons='0r, 11', seed=5)
        s1 = self.remote.last.sampled
        l2 = self.remote.feature_map_contrastive(maps, pos, comparisons='0r, 11', seed=5)
        self.assertEqual(self.remote.last.sampled['locations'], s1['locations'])
        self.assertEqual(l1.item(), l2.item())

    def test_backward_scales_by_the_incoming_gradient_and_skips_inputs_without_grad(self):
        o1 = torch.randn(5, 7, requires_grad=True)
        o2 = torch.randn(5, 7)  # no grad wanted
        (3.0 * self.remote.nt_xent(o1, o2, temperature=0.5)).backward()
        ref_o1 = o1.detach().clone().requires_grad_(True)
        ref, _ = peer.nt_xent(ref_o1, o2, 0.5)
        ref.backward()
        self.assertIsNone(o2.grad)
        torch.testing.assert_close(o1.grad, 3.0 * ref_o1.grad, rtol=1e-4, atol=1e-6)

    def test_no_input_requires_grad_asks_for_no_gradients(self):
        with torch.no_grad():
            loss = self.remote.nt_xent(torch.randn(3, 4), torch.randn(3, 4))
        self.assertFalse(loss.requires_grad)
        self.assertEqual(self.remote.last.grads, {})

    def test_amdim_nce_matches_torch(self):
        a = torch.randn(4, 6, requires_grad=True)
        p = torch.randn(6, 12, requires_grad=True)
        loss = self.remote.amdim_nce(a, p, tclip=None)
        loss.backward()
        ra, rp = a.detach().clone().requires_grad_(True), p.detach().clone().requires_grad_(True)
        ref, _ = peer.amdim_nce(ra, rp, None)
        ref.backward()
        self.assertTrue(rel_close(loss.item(), ref.item(), rtol=1e-5))
        for g, r in ((a.grad, ra.grad), (p.grad, rp.grad)):
            self.assertLessEqual(rel_err_norm(g.numpy(), r.numpy()), 1e-4)

    def test_cpc_parameters_receive_their_gradients(self):
        torch.manual_seed(4)
        task = peer.CPCTask(4, target_dim=8, embed_scale=0.1, hidden=8, num_blocks=2)
        local = copy.deepcopy(task)
        z = torch.randn(2, 4, 4, 5, requires_grad=True)
        loss = self.remote.cpc(z, dict(task.named_parameters()), target_dim=8, hidden_channels=8, num_blocks=2)
        loss.backward()
        zl = z.detach().clone().requires_grad_(True)
        ref, _ = local(zl)
        ref.backward()
        self.assertTrue(rel_close(loss.item(), ref.item(), rtol=1e-4), f'{loss.item()} vs {ref.item()}')
        self.assertLessEqual(rel_err_norm(z.grad.numpy(), zl.grad.numpy()), 1e-4)
        for (name, p), (_, q) in zip(task.named_parameters(), local.named_parameters()):
            # ||diff|| <= 1e-4 ||ref|| + 1e-7: target_cnn.bias's gradient is 0 in exact arithmetic (a bias
            # on every target shifts each softmax row by a constant), so both sides are float32 noise
            diff = float((p.grad - q.grad).norm())
            self.assertLessEqual(diff, 1e-4 * float(q.grad.norm()) + 1e-7, f'{name}: |diff| {diff}, |ref| {float(q.grad.norm())}')
        self.assertLess(float(task.target_cnn.bias.grad.norm()), 1e-6)

    def test_half_precision_maps_travel_as_such_and_gradients_come_back_in_their_dtype(self):
        for dtype, name, tol in ((torch.bfloat16, 'bfloat16', 2e-2), (torch.float16, 'float16', 2e-3)):
            with self.subTest(name):
                base_a = [torch.randn(4, 8, s, s) for s in (1, 3)]
                base_p = [torch.randn(4, 8, s, s) for s in (1, 3)]
                a = [x.to(dtype).requires_grad_(True) for x in base_a]
                p = [x.to(dtype).requires_grad_(True) for x in base_p]
                loss = self.remote.feature_map_contrastive(a, p, comparisons='01, 11')
                loss.backward()
                self.assertEqual(self.remote.last.grad_dtypes, {'anchor': [name, name], 'positive': [name, name]})
                self.assertEqual([x.grad.dtype for x in a + p], [dtype] * 4)
                # reference: the same (rounded) values in float32, the server's draws
                ra = [x.detach().float().requires_grad_(True) for x in a]
                rp = [x.detach().float().requires_grad_(True) for x in p]
                s = self.remote.last.sampled
                ref, _, _ = peer.feature_map_contrastive(ra, rp, '01, 11', 10.0, True, s['pairs'], s['locations'], None)
                ref.backward()
                self.assertTrue(rel_close(loss.item(), ref.item(), rtol=1e-4), f'{loss.item()} vs {ref.item()}')
                for g, r in zip(a + p, ra + rp):
                    self.assertLessEqual(rel_err_norm(g.grad.float().numpy(), r.grad.numpy()), tol)


if __name__ == '__main__':
    unittest.main()
