"""``import bertlab.hf``: the Watch for the Hugging Face ``Trainer`` (needs ``bertlab[torch]``).

See :class:`bertlab.probes.hf.Watch`.
"""

from bertlab.probes.hf import Watch

__all__ = ["Watch"]
