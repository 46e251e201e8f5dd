#!/usr/bin/env python3
"""Train a tiny AMDIM-style encoder for a few steps with the loss computed by ssl-loss-server.

The encoder runs here in PyTorch; its feature maps go to the server, which answers Bolts'
FeatureMapContrastiveTask loss and d(loss)/d(maps); `loss.backward()` carries those into the
encoder (clients/python/ssl_loss_client/torch_adapter.py). With --check, each step's
gradients are compared with the same loss computed in-process by bench/peer.py, using the
server's draws (rtol 1e-4).

    npm start -- --port 8080 &        # a server
    PYTHONPATH=clients/python python3 examples/torch_train.py --url http://127.0.0.1:8080 --check
"""
import argparse
import copy
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'clients', 'python'))
from ssl_loss_client import RemoteLoss  # noqa: E402


class TinyEncoder(nn.Module):
    """(b, 3, 16, 16) images to maps 1x1, 5x5, 7x7 of `c` channels, AMDIM's map sizes."""

    def __init__(self, c=32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.head = nn.Conv2d(c, c, 1)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return [self.head(h.mean(dim=(2, 3), keepdim=True)),
                self.head(F.adaptive_avg_pool2d(h, 5)),
                self.head(F.adaptive_avg_pool2d(h, 7))]


def augment(x, gen):
    """Two cheap views: noise and a random horizontal flip per sample."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x + 0.1 * torch.randn(x.shape, generator=gen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--url', default=os.environ.get('SSL_LOSS_URL', 'http://127.0.0.1:8080'))
    ap.add_argument('--api-key', default=os.environ.get('SSL_LOSS_API_KEY'))
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--dtype', choices=['float32', 'bfloat16', 'float16'], default='float32',
                    help='dtype of the maps on the wire (the encoder computes in float32)')
    ap.add_argument('--check', action='store_true', help='compare gradients with bench/peer.py in-process')
    args = ap.parse_args()

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    encoder = TinyEncoder()
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    remote = RemoteLoss(args.url, args.api_key)
    data = torch.randn(args.batch * 4, 3, 16, 16, generator=gen)
    peer = None
    if args.check:
        sys.path.insert(0, os.path.join(HERE, '..', 'bench'))
        import peer  # noqa: F811 - bench/peer.py: the losses in plain torch
    worst = 0.0
    for step in range(args.steps):
        batch = data[torch.randperm(len(data), generator=gen)[:args.batch]]
        v1, v2 = augment(batch, gen), augment(batch, gen)
        opt.zero_grad()
        if peer is not None:
            shadow = copy.deepcopy(encoder)
        dt = getattr(torch, args.dtype)
        anchors = [m.to(dt) for m in encoder(v1)]
        positives = [m.to(dt) for m in encoder(v2)]
        loss = remote.feature_map_contrastive(anchors, positives, comparisons='01, 02, 11')
        loss.backward()
        r = remote.last
        line = f'step {step}: loss {loss.item():.4f} losses {[round(x, 4) for x in r.terms["losses"]]} ' \
               f'({r.meta.get("backend")}, {r.meta.get("compute_ms")} ms)'
        if peer is not None:
            s = r.sampled
            a = [m.to(dt).float() for m in shadow(v1)]
            p = [m.to(dt).float() for m in shadow(v2)]
            ref, _, _ = peer.feature_map_contrastive(a, p, '01, 02, 11', 10.0, True, s['pairs'], s['locations'], None)
            ref.backward()
            errs = [float((x.grad - y.grad).norm() / y.grad.norm()) for x, y in zip(encoder.parameters(), shadow.parameters())]
            worst = max(worst, max(errs))
            line += f'; in-process torch loss {ref.item():.4f}, max relative gradient error {max(errs):.2e}'
        print(line)
        opt.step()
    if peer is not None:
        tol = 1e-4 if args.dtype == 'float32' else 5e-2
        print(f'gradients {"match" if worst <= tol else "DIFFER"} (worst {worst:.2e}, tolerance {tol})')
        return 0 if worst <= tol else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
