"""PyTorch autograd adapter: the server's losses as differentiable torch functions.

    remote = RemoteLoss('http://host:8080')
    loss = remote.feature_map_contrastive(anchors, positives, comparisons='01, 02, 11')
    loss.backward()   # fills the encoder's .grad with the server's d(loss)/d(maps)

The forward pass sends the detached tensors in their own dtype (float16 and bfloat16 as such,
API.md "Tensors"), the server answers the loss and d(loss)/d(input) in the same pass, and the
backward pass only scales those gradients by the incoming grad_output (the loss is a scalar,
so the vector-Jacobian product is grad_output * grad). The loss comes back as a float32
0-d tensor on the device of the first input; the full answer (terms, sampled draws, meta) is
`remote.last`. Double backward is not supported (the server returns first derivatives only).
"""
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .body import DEFAULT, amdim_nce_args, common_options, cpc_args, fmc_args, nt_xent_args
from .client import LossClient


class _RemoteLossFunction(torch.autograd.Function):
    """forward(ctx, evaluate, *tensors): evaluate(tensors) -> (loss float, [grad or None per tensor])."""

    @staticmethod
    def forward(ctx, evaluate, *tensors):
        loss, grads = evaluate(tensors)
        ctx.grads = grads  # intermediates of our own, not inputs: kept on ctx (torch.autograd docs)
        device = tensors[0].device if tensors else torch.device('cpu')
        return torch.tensor(loss, dtype=torch.float32, device=device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        out = [None]
        for g in ctx.grads:
            out.append(None if g is None else g * grad_output.to(device=g.device, dtype=g.dtype))
        ctx.grads = None
        return tuple(out)


def _grad_tensor(g, like):
    """A NumPy gradient as a torch tensor of `like`'s dtype and device. bfloat16 arrives widened to
    float32 and narrows back exactly; float16 and float32 keep their bits."""
    if g is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(g))
    return t.to(device=like.device, dtype=like.dtype)


class RemoteLoss:
    """The losses of an ssl-loss-server as torch functions with gradients.

    client: a LossClient, or a URL (api_key and the LossClient keywords then apply).
    grad_dtype: ask the server for gradients in this dtype (e.g. 'float32' for bfloat16
    inputs, to avoid a second rounding before the scaling); they are cast to each input's
    dtype before autograd sees them.
    """

    def __init__(self, client, api_key=None, *, grad_dtype=None, **client_kw):
        self.client = client if isinstance(client, LossClient) else LossClient(client, api_key, **client_kw)
        self.grad_dtype = grad_dtype
        self.last = None  # LossResult of the latest evaluation

    def _apply(self, kind, config, named, options, params=None):
        """named: [(path, tensor)] in a fixed order; path ('anchor', 0) or ('z',); params: {name: tensor}."""
        tensors = [t for _, t in named]
        param_items = list((params or {}).items())
        all_tensors = tensors + [t for _, t in param_items]
        need_inputs = any(t.requires_grad for t in tensors)
        need_params = any(t.requires_grad for _, t in param_items)

        def evaluate(detached):
            inputs = {}
            for (path, _), t in zip(named, detached):
                if len(path) == 1:
                    inputs[path[0]] = t
                else:
                    inputs.setdefault(path[0], []).append(t)
            sent_params = {name: t for (name, _), t in zip(param_items, detached[len(named):])}
            opts = common_options(need_inputs or need_params, True if need_params else None, self.grad_dtype, extra=options)
            result = self.client.evaluate(kind, inputs, config, sent_params or None, opts)
            self.last = result
            grads = []
            for (path, t), like in zip(named, detached):
                g = result.grads.get(path[0]) if result.grads else None
                if g is not None and len(path) > 1:
                    g = g[path[1]]
                grads.append(_grad_tensor(g, like) if t.requires_grad else None)
            for (name, t), like in zip(param_items, detached[len(named):]):
                grads.append(_grad_tensor(result.param_grads.get(name), like) if t.requires_grad else None)
            return result.loss, grads

        return _RemoteLossFunction.apply(evaluate, *all_tensors)

    def feature_map_contrastive(self, anchors, positives, comparisons=DEFAULT, tclip=DEFAULT, bidirectional=DEFAULT, *,
                                pairs=None, locations=None, seed=None):
        """Bolts' FeatureMapContrastiveTask loss, sum(losses) + regularizer, as AMDIM trains it.
        anchors, positives: lists of M maps (b, c, h, w)."""
        config, inputs, kind_opts = fmc_args(anchors, positives, comparisons, tclip, bidirectional, pairs, locations)
        named = [(('anchor', i), t) for i, t in enumerate(inputs['anchor'])] + \
                [(('positive', i), t) for i, t in enumerate(inputs['positive'])]
        return self._apply('feature-map-contrastive', config, named, {**kind_opts, 'seed': seed})

    def amdim_nce(self, anchor, positive, tclip=DEFAULT):
        config, _, kind_opts = amdim_nce_args(anchor, positive, tclip)
        return self._apply('amdim-nce', config, [(('anchor',), anchor), (('positive',), positive)], kind_opts)

    def nt_xent(self, out_1, out_2, temperature=DEFAULT, *, normalize=None):
        config, _, kind_opts = nt_xent_args(out_1, out_2, temperature, normalize)
        return self._apply('nt-xent', config, [(('out_1',), out_1), (('out_2',), out_2)], kind_opts)

    def cpc(self, z, params, *, num_input_channels=None, target_dim=DEFAULT, embed_scale=DEFAULT,
            hidden_channels=DEFAULT, num_blocks=DEFAULT, step_weighting=DEFAULT):
        """Bolts' CPCTask loss. params: {state_dict key: tensor}, e.g. dict(task.named_parameters())
        of a torch CPCTask; those that require grad receive d(loss)/d(param)."""
        config, _, _ = cpc_args(z, num_input_channels, target_dim, embed_scale, hidden_channels, num_blocks, step_weighting)
        return self._apply('cpc', config, [(('z',), z)], {}, params=dict(params))
