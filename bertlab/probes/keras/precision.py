"""Record the numbers of a mixed-precision step as a float32 step would have them.

Under ``mixed_float16`` Keras wraps the optimizer in a ``LossScaleOptimizer``: ``train_step``
multiplies the loss by the current loss scale before differentiating, so the gradients that
reach ``optimizer.apply`` are scaled too; the optimizer divides them back, skips the step when
any is non-finite, and halves the scale (doubling it again after ``dynamic_growth_steps``
finite steps). A plain optimizer with ``loss_scale_factor`` does the same with a fixed factor.
This module reads the scale the step used, so that the recorded gradient norms are those of
the unscaled gradients, and records it as the optional ``loss_scale`` channel (the
``loss-scale-collapse`` rule reads it). Outputs (float16 or bfloat16) are read in float32 by
:mod:`quantities`. The recorded ``output_op`` stays the op Keras's loss sees: a softmax behind a
float32 cast is not bypassed by Keras (it only reads the logits of a last ``Softmax`` op), so the
double softmax is real there and ``double-softmax`` rightly stays an error.
"""

from __future__ import annotations

from typing import Any

from keras import ops


def loss_scale(opt: Any) -> Any:
    """The loss scale this step's gradients carry, as a float32 tensor, or None (no scaling).

    A ``LossScaleOptimizer``'s current ``dynamic_scale`` (read before ``apply`` changes it), or
    a plain optimizer's fixed ``loss_scale_factor``.
    """
    if opt is None:
        return None
    if hasattr(opt, "inner_optimizer") and hasattr(opt, "initial_scale"):
        scale = getattr(opt, "dynamic_scale", None)
        if scale is None:  # not built yet: the trace that builds it, which tf.function redoes
            return float(opt.initial_scale)
        value = scale.value if hasattr(scale, "value") else scale
        return ops.cast(ops.copy(value), "float32")  # a copy: apply() changes it next
    factor = getattr(opt, "loss_scale_factor", None)
    if factor:
        return float(factor)
    return None


def unscale(stats: dict[str, Any], scale: Any) -> dict[str, Any]:
    """Gradient statistics of scaled gradients, turned into those of the unscaled ones.

    Norms are divided by the scale (cheaper than dividing every gradient, and the same number);
    counts of zero, missing and non-finite gradients do not change.
    """
    out = dict(stats)
    for name in ("grad_norm", "grad_layer_norm"):
        if name in out:
            out[name] = out[name] / scale
    out["loss_scale"] = scale
    return out
