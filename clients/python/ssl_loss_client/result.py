"""One evaluation's answer with its tensors decoded to NumPy (API.md "Response of an evaluation")."""
from dataclasses import dataclass, field

from .tensors import from_wire, map_tree


@dataclass
class LossResult:
    loss: float
    """the scalar the gradients belong to"""
    terms: dict = field(default_factory=dict)
    """the kind's parts: losses/regularizer, nce/regularizer, steps"""
    grads: dict = field(default_factory=dict)
    """same structure as the inputs: arrays, or lists of arrays (feature-map-contrastive)"""
    param_grads: dict = field(default_factory=dict)
    """cpc with param_grads=True: name -> array"""
    sampled: dict = None
    """feature-map-contrastive: {pairs, locations, seed}, the draws that were used"""
    step: int = None
    """task instances: optimizer steps applied so far"""
    meta: dict = field(default_factory=dict)
    """{backend, worker, queue_ms, compute_ms}"""
    grad_dtypes: dict = field(default_factory=dict, repr=False)
    """the wire dtype of each gradient, same structure as grads (bfloat16 arrives widened to float32)"""

    @classmethod
    def from_answer(cls, answer):
        grads = answer.get('grads') or {}
        pgrads = answer.get('param_grads') or {}
        decode = lambda t, path: from_wire(t, '.'.join(map(str, ('grads',) + path)))  # noqa: E731
        return cls(
            loss=float(answer['loss']),
            terms=answer.get('terms') or {},
            grads=map_tree(decode, grads),
            param_grads={k: from_wire(v, f'param_grads.{k}') for k, v in pgrads.items()},
            sampled=answer.get('sampled'),
            step=answer.get('step'),
            meta=answer.get('meta') or {},
            grad_dtypes=map_tree(lambda t, _: t.get('dtype'), grads),
        )
