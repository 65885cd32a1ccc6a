"""``import bertlab.hf``: the Watch for the Hugging Face ``Trainer`` (needs ``bertlab[torch]``).

See :class:`bertlab.probes.hf.Watch`.
"""

try:
    from bertlab.probes.hf import Watch
except ModuleNotFoundError as exc:  # say which extra brings the missing framework
    if exc.name is None or exc.name.split(".")[0] not in ("torch", "transformers"):
        raise
    raise ModuleNotFoundError(
        f"bertlab.hf needs PyTorch and transformers ({exc}); install them with: "
        "pip install 'bertlab[torch]'",
        name=exc.name,
    ) from exc

__all__ = ["Watch"]
