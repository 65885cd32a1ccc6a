"""``import bertlab.hf``: the Watch for the Hugging Face ``Trainer`` (needs ``bertlab[torch]``).

See :class:`bertlab.probes.hf.Watch`.
"""

from bertlab.guard import missing_extra

try:
    from bertlab.probes.hf import Watch
except ModuleNotFoundError as exc:  # say which extra brings the missing framework
    needs = "bertlab.hf needs PyTorch and transformers"
    raise missing_extra(exc, ("torch", "transformers"), needs, "torch") from exc

__all__ = ["Watch"]
