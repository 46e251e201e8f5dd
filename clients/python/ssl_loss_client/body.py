"""Request bodies of an evaluation (API.md "Request body of an evaluation"), shared by the HTTP
client and the WebSocket stream so both send exactly the same map."""
import msgpack

from .tensors import map_tree, to_wire


class _Default:
    """Marks an argument left out, so the server applies Bolts' default (tclip=None is a value)."""

    def __repr__(self):
        return 'DEFAULT'


DEFAULT = _Default()


def drop_defaults(d):
    return {k: v for k, v in d.items() if v is not DEFAULT}


def wire_inputs(inputs, dtype=None):
    """Inputs of NumPy arrays / torch tensors (lists of them for feature maps) as wire tensors."""
    return map_tree(lambda x, _: to_wire(x, dtype), inputs)


def evaluation_body(inputs, config=None, params=None, options=None, dtype=None):
    body = {'inputs': wire_inputs(inputs, dtype)}
    if config:
        body['config'] = drop_defaults(config)
    if params:
        body['params'] = {k: to_wire(v, dtype) for k, v in params.items()}
    if options:
        opts = {k: v for k, v in drop_defaults(options).items() if v is not None}
        if opts:
            body['options'] = opts
    return body


def common_options(gradients=True, param_grads=None, grad_dtype=None, seed=None, update=None, extra=None):
    """The common options (schemas/options.ts) plus the kind's own; None means 'not sent'."""
    opts = {'gradients': gradients, 'param_grads': param_grads, 'grad_dtype': grad_dtype, 'seed': seed, 'update': update}
    opts.update(extra or {})
    return {k: v for k, v in opts.items() if v is not None}


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


# The per-kind arguments, one place for HTTP, stream and torch: (config, inputs, options).

def fmc_args(anchor, positive, comparisons=DEFAULT, tclip=DEFAULT, bidirectional=DEFAULT, pairs=None, locations=None):
    config = {'comparisons': comparisons, 'tclip': tclip, 'bidirectional': bidirectional}
    return config, {'anchor': list(anchor), 'positive': list(positive)}, {'pairs': pairs, 'locations': locations}


def amdim_nce_args(anchor, positive, tclip=DEFAULT):
    return {'tclip': tclip}, {'anchor': anchor, 'positive': positive}, {}


def nt_xent_args(out_1, out_2, temperature=DEFAULT, normalize=None):
    return {'temperature': temperature}, {'out_1': out_1, 'out_2': out_2}, {'normalize': normalize}


def cpc_args(z, num_input_channels=None, target_dim=DEFAULT, embed_scale=DEFAULT, hidden_channels=DEFAULT,
             num_blocks=DEFAULT, step_weighting=DEFAULT):
    c = num_input_channels if num_input_channels is not None else int(z.shape[1])
    config = {'num_input_channels': c, 'target_dim': target_dim, 'embed_scale': embed_scale,
              'hidden_channels': hidden_channels, 'num_blocks': num_blocks, 'step_weighting': step_weighting}
    return config, {'z': z}, {}
