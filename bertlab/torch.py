"""``import bertlab.torch``: the Watch for PyTorch training loops (needs ``bertlab[torch]``).

See :class:`bertlab.probes.torch.watch.Watch`.
"""

from bertlab.guard import missing_extra

try:
    from bertlab.probes.torch import Watch
except ModuleNotFoundError as exc:  # say which extra brings the missing framework
    raise missing_extra(exc, ("torch",), "bertlab.torch needs PyTorch", "torch") from exc

__all__ = ["Watch"]
