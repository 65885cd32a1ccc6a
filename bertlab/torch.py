"""``import bertlab.torch``: the Watch for PyTorch training loops (needs ``bertlab[torch]``).

See :class:`bertlab.probes.torch.watch.Watch`.
"""

from bertlab.probes.torch import Watch

__all__ = ["Watch"]
