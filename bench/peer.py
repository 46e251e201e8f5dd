#!/usr/bin/env python3
"""PyTorch peer of ssl-loss-server: the same four loss kinds, computed in-process with torch.

`npm run bench` times the server against this script. Both compute the math of
../shared/spec/LOSSES.md, which is Lightning Bolts' pl_bolts/losses/self_supervised_learning.py
(nt_xent_loss, AmdimNCELoss, FeatureMapContrastiveTask, CPCTask) and
pl_bolts/models/vision/pixel_cnn.py (PixelCNN), with the spec's marked fixes.

Modes (see bench/README.md):
  python3 bench/peer.py --workload NAME --repeats N --warmup K [--json] [--literal]
      times forward + backward on seeded random inputs; prints one JSON line on stdout.
  python3 bench/peer.py --request FILE.json [--kind KIND] [--literal]
      evaluates one API.md request body (or a fixture {kind, request}); '-' reads stdin;
      prints {loss, terms, grads, param_grads?, sampled?} as one JSON line. A JSON list of
      fixtures {kind, request} gives one line per item (one torch start for many cases).
Exit codes: 0 ok, 2 bad arguments or request, 3 torch not installed.
"""
import argparse
import json
import math
import statistics
import sys
import time

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no usable torch"
    print(json.dumps({'error': f'torch not installed: {type(e).__name__}: {e}'}))
    sys.exit(3)


class PeerError(Exception):
    """A request or workload the peer cannot compute (exit 2 with {"error": ...})."""


# ---------------------------------------------------------------------------------------------
# The math (LOSSES.md). Each function returns (loss, terms) with loss a 0-d tensor.

def tanh_clip(x, tclip):
    # Bolts tanh_clip: t * tanh(x / t); identity when t is None
    return x if tclip is None else tclip * torch.tanh(x / tclip)


def nt_xent(out_1, out_2, temperature, normalize=False):
    """Bolts nt_xent_loss; fix (LOSSES.md): log space, so large logits stay finite.

    loss = mean_k [ logsumexp_{j != k} logit[k, j] - s_k ], the partner stays in the denominator.
    """
    if normalize:
        out_1 = F.normalize(out_1, dim=1)
        out_2 = F.normalize(out_2, dim=1)
    out = torch.cat([out_1, out_2], dim=0)
    n = out.shape[0]
    logits = torch.mm(out, out.t()) / temperature
    # Bolts drops the diagonal with masked_select; -inf does the same inside logsumexp
    eye = torch.eye(n, dtype=torch.bool)
    neg = torch.logsumexp(logits.masked_fill(eye, float('-inf')), dim=1)
    pos = torch.sum(out_1 * out_2, dim=-1) / temperature
    pos = torch.cat([pos, pos], dim=0)
    return (neg - pos).mean(), {}


def amdim_nce(r_src, r_trg, tclip):
    """Bolts AmdimNCELoss with mask_mat = eye(b).

    r_src (b, d), r_trg (d, b*L) with column j*L + l = location l of sample j.
    Bolts shifts by the row max of the negatives (positives set to -tclip) and adds
    exp(pos - max); the shift cancels, so we combine pos with the negatives' logsumexp by
    logaddexp, which is the same number and also stable when tclip is None (LOSSES.md fix).
    """
    b, d = r_src.shape
    L = r_trg.shape[1] // b
    raw = torch.mm(r_src, r_trg).reshape(b, b, L) / d ** 0.5
    regularizer = 5e-2 * (raw ** 2.0).mean()  # Bolts' "trick 1", before clipping
    s = tanh_clip(raw, tclip)
    mask_pos = torch.eye(b, dtype=torch.bool).unsqueeze(2).expand(b, b, L)
    pos = (mask_pos * s).sum(dim=1)  # (b, L): each partner location is its own positive
    neg = s.masked_fill(mask_pos, float('-inf')).reshape(b, -1)  # all locations of the others
    neg_lse = torch.logsumexp(neg, dim=1, keepdim=True)  # (b, 1)
    nce = (torch.logaddexp(pos, neg_lse) - pos).mean()
    return nce + regularizer, {'nce': nce, 'regularizer': regularizer}


def parse_comparisons(text):
    """FeatureMapContrastiveTask.parse_map_indexes, strict (LOSSES.md): -1 means 'r'."""
    out = []
    for token in (x.strip() for x in text.split(',')):
        if len(token) != 2 or any(ch != 'r' and not ch.isdigit() for ch in token):
            raise PeerError(f'comparisons: token {token!r} of {text!r} is not two characters from 0-9 or r')
        out.append(tuple(-1 if ch == 'r' else int(ch) for ch in token))
    return out


def compare_maps(m1, m2, loc, tclip):
    """Bolts __compare_maps: one source vector per sample of m1 at flat location loc[n] = y*w + x
    (Bolts draws it with torch.randint and a one-hot mask; the locations are explicit here),
    against every location of m2 as columns n*h2*w2 + y*w2 + x."""
    b, c, h, w = m1.shape
    if m2.shape[1] != c:
        raise PeerError(f'compare: channel counts differ: {c} vs {m2.shape[1]}')
    src = m1.reshape(b, c, h * w)[torch.arange(b), :, loc]  # (b, c)
    tgt = m2.permute(1, 0, 2, 3).reshape(c, -1)
    loss, terms = amdim_nce(src, tgt, tclip)
    return terms['nce'], terms['regularizer']


def feature_map_contrastive(anchor, positive, comparisons, tclip, bidirectional, pairs, locations, gen):
    """Bolts FeatureMapContrastiveTask.forward; loss = sum(losses) + regularizer (as Bolts' AMDIM trains).

    pairs/locations: explicit choices (None: drawn from gen, 'r' pairs ai before pi).
    """
    parsed = parse_comparisons(comparisons)
    m = len(anchor)
    used_pairs, used_locs, losses = [], [], []
    regularizer = 0
    for k, (ai, pi) in enumerate(parsed):
        if pairs is not None:
            ai, pi = pairs[k]
        else:
            if ai == -1:
                ai = int(torch.randint(0, m, (1,), generator=gen))
            if pi == -1:
                pi = int(torch.randint(0, m, (1,), generator=gen))
        if not (0 <= ai < m and 0 <= pi < m):
            raise PeerError(f'comparison {k}: pair ({ai}, {pi}) out of range for {m} maps')
        directions = [(anchor[ai], positive[pi])]
        if bidirectional:
            directions.append((positive[ai], anchor[pi]))
        dir_losses, dir_regs, dir_locs = [], [], []
        for di, (m1, m2) in enumerate(directions):
            b, _, h, w = m1.shape
            if locations is not None:
                loc = torch.tensor(locations[k][di], dtype=torch.long)
            else:
                loc = torch.randint(0, h * w, (b,), generator=gen)
            lo, rg = compare_maps(m1, m2, loc, tclip)
            dir_losses.append(lo)
            dir_regs.append(rg)
            dir_locs.append([int(v) for v in loc])
        if bidirectional:
            map_loss, map_reg = 0.5 * (dir_losses[0] + dir_losses[1]), 0.5 * (dir_regs[0] + dir_regs[1])
        else:
            map_loss, map_reg = dir_losses[0], dir_regs[0]
        losses.append(map_loss)
        regularizer = regularizer + map_reg
        used_pairs.append([ai, pi])
        used_locs.append(dir_locs)
    stacked = torch.stack(losses)
    loss = stacked.sum() + regularizer
    return loss, {'losses': stacked, 'regularizer': regularizer}, {'pairs': used_pairs, 'locations': used_locs}


class PixelCNN(nn.Module):
    """Bolts PixelCNN (hidden_channels, num_blocks configurable). Module names give the
    state_dict keys of API.md: context_cnn.blocks.{k}.{0,2,4,6}.{weight,bias}."""

    def __init__(self, channels, hidden, num_blocks):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=(1, 1)),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel_size=(1, 3)),  # width w-2
            nn.ConstantPad2d((0, 0, 1, 0), 1.0),  # one row on top, filled with 1.0 (Bolts)
            nn.Conv2d(hidden, hidden, kernel_size=(2, 1), padding=(0, 1)),  # back to h x w
            nn.ReLU(),
            nn.Conv2d(hidden, channels, kernel_size=(1, 1)),
        ) for _ in range(num_blocks)])

    def forward(self, z):
        c = z
        for block in self.blocks:
            c = c + block(c)
        return F.relu(c)


class CPCTask(nn.Module):
    """Bolts CPCTask. literal=True runs Bolts' double loop (step i evaluated i times, the empty
    step h-1 dropped as NaN); literal=False evaluates each step once and weights it (LOSSES.md)."""

    def __init__(self, channels, target_dim=64, embed_scale=0.1, hidden=256, num_blocks=5,
                 step_weighting='bolts', literal=False):
        super().__init__()
        self.embed_scale = embed_scale
        self.step_weighting = step_weighting
        self.literal = literal
        self.target_cnn = nn.Conv2d(channels, target_dim, kernel_size=1)
        self.pred_cnn = nn.Conv2d(channels, target_dim, kernel_size=1)
        self.context_cnn = PixelCNN(channels, hidden, num_blocks)

    def step_loss(self, targets, preds, i):
        """CE_i: predictions of rows 0..h-i-2 against all b*h*w targets; label of (n, y, x) is
        the target at (n, y+i+1, x) (Bolts compute_loss_h)."""
        b, t, h, w = targets.shape
        tg = targets.permute(0, 2, 3, 1).reshape(-1, t)
        pr = (preds[:, :, :h - i - 1, :] * self.embed_scale).permute(0, 2, 3, 1).reshape(-1, t)
        logits = torch.mm(pr, tg.t())
        rows = (h - i - 1) * w
        n = torch.arange(b * rows)
        labels = (n // rows) * h * w + (i + 1) * w + n % rows
        return F.cross_entropy(logits, labels)

    def forward(self, z):
        h, w = z.shape[2], z.shape[3]
        if h < 3 or w < 3:
            raise PeerError(f'cpc: z must be at least 3x3, got {h}x{w}')
        targets = self.target_cnn(z)
        preds = self.pred_cnn(self.context_cnn(z))
        weight = (lambda i: float(i)) if self.step_weighting == 'bolts' else (lambda i: 1.0)
        ce = {}
        if self.literal and self.step_weighting == 'bolts':
            losses = []
            for ignore in range(h - 1):
                for i in range(ignore + 1, h):
                    lo = self.step_loss(targets, preds, i)
                    if not torch.isnan(lo):  # step h-1 has no rows: NaN, dropped as Bolts does
                        ce.setdefault(i, lo)
                        losses.append(lo)
            loss = torch.stack(losses).sum()
        else:
            for i in range(1, h - 1):
                ce[i] = self.step_loss(targets, preds, i)
            loss = sum(weight(i) * ce[i] for i in ce)
        steps = [{'offset': i, 'loss': ce[i], 'weight': weight(i)} for i in sorted(ce)]
        return loss, {'steps': steps}


# ---------------------------------------------------------------------------------------------
# Cost model (LOSSES.md "Cost"): multiply-adds of the forward pass; forward + backward = 3x;
# 2 flops per multiply-add.

def gflop_fmct(b, c, target_areas, bidirectional):
    return 3 * 2 * (2 if bidirectional else 1) * sum(b * b * c * L for L in target_areas) / 1e9


def gflop_cpc(b, C, h, w, T, H, K, literal=False):
    pixel = K * b * h * (w * (2 * C * H + 2 * H * H) + 3 * (w - 2) * H * H)
    heads = 2 * b * h * w * C * T
    # step i: b*(h-i-1)*w predictions x b*h*w targets x T; once per step = (h-1)(h-2)/2 row
    # blocks; Bolts' literal loop evaluates step i i times.
    rows = sum((i if literal else 1) * (h - i - 1) for i in range(1, h - 1))
    logits = b * b * w * w * h * T * rows
    return 3 * 2 * (pixel + heads + logits) / 1e9


def gflop_nt_xent(b, d):
    return 3 * 2 * (2 * b) ** 2 * d / 1e9


# ---------------------------------------------------------------------------------------------
# Workloads (issue 4/6): seeded random float32 inputs, forward + backward timed.

def randn(gen, *shape, scale=1.0):
    return (torch.randn(*shape, generator=gen) * scale).requires_grad_(True)


def fmct_workload(b, c, sizes, comparisons, tclip):
    def setup(gen):
        anchor = [randn(gen, b, c, s, s) for s in sizes]
        positive = [randn(gen, b, c, s, s) for s in sizes]

        def step():
            # Bolts draws source locations on every call; so do we (inside the timing)
            loss, _, _ = feature_map_contrastive(anchor, positive, comparisons, tclip, True, None, None, gen)
            loss.backward()
            return loss.detach()
        return step, anchor + positive
    areas = [sizes[pi] ** 2 for _, pi in parse_comparisons(comparisons)]
    return setup, lambda literal: gflop_fmct(b, c, areas, True)


def cpc_workload(b, C, h, w, T=64, H=256, K=5):
    def setup(gen, literal):
        task = CPCTask(C, T, 0.1, H, K, 'bolts', literal)  # PyTorch default init, seeded below
        z = randn(gen, b, C, h, w)

        def step():
            loss, _ = task(z)
            loss.backward()
            return loss.detach()
        return step, [z] + list(task.parameters())
    return setup, lambda literal: gflop_cpc(b, C, h, w, T, H, K, literal)


def nt_xent_workload(b, d, temperature=0.5):
    def setup(gen):
        # rows of norm ~1, like SimCLR's projection outputs
        out_1, out_2 = randn(gen, b, d, scale=d ** -0.5), randn(gen, b, d, scale=d ** -0.5)

        def step():
            loss, _ = nt_xent(out_1, out_2, temperature)
            loss.backward()
            return loss.detach()
        return step, [out_1, out_2]
    return setup, lambda literal: gflop_nt_xent(b, d)


WORKLOADS = {
    'simclr': ('nt-xent', nt_xent_workload(256, 128)),
    'amdim-small': ('feature-map-contrastive', fmct_workload(64, 256, [1, 5, 7], '01, 02, 11', 10.0)),
    'cpc-small': ('cpc', cpc_workload(8, 256, 7, 7)),
    # Bolts' CIFAR AMDIM: encoder maps 1x1 / 5x5 / 7x7 of 1280 channels, '01, 02, 11', tclip 10
    'amdim': ('feature-map-contrastive', fmct_workload(200, 1280, [1, 5, 7], '01, 02, 11', 10.0)),
    # Bolts' CPC v2 head on 7x7 ResNet features of 2048 channels
    'cpc': ('cpc', cpc_workload(32, 2048, 7, 7)),
}


def run_workload(name, repeats, warmup, literal, seed):
    if name not in WORKLOADS:
        raise PeerError(f'unknown workload {name!r}; one of {", ".join(WORKLOADS)}')
    kind, (setup, gflop) = WORKLOADS[name]
    torch.manual_seed(seed)  # cpc parameter init
    gen = torch.Generator().manual_seed(seed)
    step, leaves = setup(gen, literal) if kind == 'cpc' else setup(gen)
    times, loss = [], float('nan')
    for r in range(warmup + repeats):
        for x in leaves:
            x.grad = None
        t0 = time.perf_counter()
        loss = step().item()
        dt = (time.perf_counter() - t0) * 1000
        if r >= warmup:
            times.append(dt)
    out = {
        'workload': name, 'kind': kind, 'torch_version': torch.__version__,
        'threads': torch.get_num_threads(), 'times_ms': times,
        'median_ms': statistics.median(times) if times else None,
        'min_ms': min(times) if times else None, 'max_ms': max(times) if times else None,
        'loss': loss, 'gflop': gflop(False),
    }
    if kind == 'cpc':
        out['literal'] = literal
        out['gflop_executed'] = gflop(literal)
    return out


# ---------------------------------------------------------------------------------------------
# --request mode: an API.md JSON body in, the response's loss / terms / grads out.

def tensor_in(t, where):
    if not isinstance(t, dict) or 'shape' not in t or 'data' not in t:
        raise PeerError(f'{where}: not a tensor {{dtype, shape, data}}')
    shape = [int(s) for s in t['shape']]
    if math.prod(shape) != len(t['data']):
        raise PeerError(f'{where}: shape {shape} needs {math.prod(shape)} elements, data has {len(t["data"])}')
    # computation is float32 whatever the wire dtype (API.md "Tensors")
    return torch.tensor(t['data'], dtype=torch.float32).reshape(shape).requires_grad_(True)


def tensor_out(x):
    if x is None:
        return None
    x = x.detach().to(torch.float32)
    return {'dtype': 'float32', 'shape': list(x.shape), 'data': x.reshape(-1).tolist()}


def plain(v):
    """terms to JSON: tensors to numbers / lists."""
    if isinstance(v, torch.Tensor):
        return v.item() if v.dim() == 0 else v.detach().tolist()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def grad_of(x):
    return x.grad if x.grad is not None else torch.zeros_like(x)


def run_request(kind, body, literal):
    config = body.get('config') or {}
    inputs = body.get('inputs') or {}
    options = body.get('options') or {}
    gen = torch.Generator().manual_seed(int(options.get('seed', 0)))
    out = {}
    if kind == 'nt-xent':
        o1, o2 = tensor_in(inputs.get('out_1'), 'inputs.out_1'), tensor_in(inputs.get('out_2'), 'inputs.out_2')
        loss, terms = nt_xent(o1, o2, float(config.get('temperature', 0.5)), bool(options.get('normalize', False)))
        loss.backward()
        grads = {'out_1': grad_of(o1), 'out_2': grad_of(o2)}
    elif kind == 'amdim-nce':
        a, p = tensor_in(inputs.get('anchor'), 'inputs.anchor'), tensor_in(inputs.get('positive'), 'inputs.positive')
        if a.dim() != 2 or p.dim() != 2 or p.shape[0] != a.shape[1] or p.shape[1] % a.shape[0] != 0:
            raise PeerError(f'amdim-nce: anchor {list(a.shape)} and positive {list(p.shape)} do not fit (b, d), (d, b*L)')
        loss, terms = amdim_nce(a, p, config.get('tclip', 10.0))
        loss.backward()
        grads = {'anchor': grad_of(a), 'positive': grad_of(p)}
    elif kind == 'feature-map-contrastive':
        anchor = [tensor_in(t, f'inputs.anchor[{i}]') for i, t in enumerate(inputs.get('anchor') or [])]
        positive = [tensor_in(t, f'inputs.positive[{i}]') for i, t in enumerate(inputs.get('positive') or [])]
        if len(anchor) == 0 or [x.shape for x in anchor] != [x.shape for x in positive]:
            raise PeerError('feature-map-contrastive: anchor and positive must be non-empty lists of equal shapes')
        loss, terms, sampled = feature_map_contrastive(
            anchor, positive, config.get('comparisons', '00, 11'), config.get('tclip', 10.0),
            bool(config.get('bidirectional', True)), options.get('pairs'), options.get('locations'), gen)
        loss.backward()
        grads = {'anchor': [grad_of(x) for x in anchor], 'positive': [grad_of(x) for x in positive]}
        out['sampled'] = sampled
    elif kind == 'cpc':
        z = tensor_in(inputs.get('z'), 'inputs.z')
        if 'num_input_channels' not in config:
            raise PeerError('cpc: config.num_input_channels is required')
        task = CPCTask(int(config['num_input_channels']), int(config.get('target_dim', 64)),
                       float(config.get('embed_scale', 0.1)), int(config.get('hidden_channels', 256)),
                       int(config.get('num_blocks', 5)), config.get('step_weighting', 'bolts'), literal)
        if body.get('params'):
            state = {k: tensor_in(v, f'params.{k}').detach() for k, v in body['params'].items()}
            try:
                task.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise PeerError(f'cpc params: {e}') from e
        loss, terms = task(z)
        loss.backward()
        grads = {'z': grad_of(z)}
        if options.get('param_grads', False):
            out['param_grads'] = {k: tensor_out(grad_of(p)) for k, p in task.named_parameters()}
    else:
        raise PeerError(f'unknown kind {kind!r}')
    out['loss'] = loss.item()
    out['terms'] = plain(terms)
    if options.get('gradients', True):
        out['grads'] = {k: [tensor_out(g) for g in v] if isinstance(v, list) else tensor_out(v) for k, v in grads.items()}
    return out


def main(argv):
    ap = argparse.ArgumentParser(description='PyTorch peer of ssl-loss-server (see bench/README.md)')
    ap.add_argument('--workload', help=f'one of {", ".join(WORKLOADS)}')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--json', action='store_true', help='only the JSON line (no human summary on stderr)')
    ap.add_argument('--literal', action='store_true', help="cpc: Bolts' literal double loop over steps")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--request', metavar='FILE', help="API.md JSON body (or a fixture {kind, request}); '-' = stdin")
    ap.add_argument('--kind', help='the kind of a --request body (POST /v1/loss/{kind})')
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)  # the machine is shared: same budget as the server
    try:
        if args.request is not None:
            doc = json.load(sys.stdin if args.request == '-' else open(args.request))
            if isinstance(doc, list):  # many fixtures {kind, request} in one process: one line each
                for item in doc:
                    print(json.dumps(run_request(item['kind'], item['request'], args.literal)))
                return 0
            kind, body = args.kind, doc
            if 'request' in doc and 'inputs' not in doc:  # a fixture file
                kind, body = args.kind or doc.get('kind'), doc['request']
            if kind is None:
                raise PeerError('--request needs --kind (or a fixture file with "kind")')
            print(json.dumps(run_request(kind, body, args.literal)))
            return 0
        if args.workload is None:
            raise PeerError('give --workload NAME or --request FILE')
        if args.repeats < 1 or args.warmup < 0:
            raise PeerError('--repeats must be >= 1 and --warmup >= 0')
        res = run_workload(args.workload, args.repeats, args.warmup, args.literal, args.seed)
        if not args.json:
            print(f"{res['workload']}: median {res['median_ms']:.1f} ms (min {res['min_ms']:.1f}, max {res['max_ms']:.1f}), "
                  f"{res['gflop']:.3g} GFLOP -> {res['gflop'] / res['median_ms'] * 1e3:.1f} GFLOP/s, "
                  f"torch {res['torch_version']} x{res['threads']} threads", file=sys.stderr)
        print(json.dumps(res))
        return 0
    except (PeerError, OSError, json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as e:
        print(json.dumps({'error': f'{type(e).__name__}: {e}'}))
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
