"""``import bertlab.torch``: the Watch for PyTorch training loops (needs ``bertlab[torch]``).

See :class:`bertlab.probes.torch.watch.Watch`.
"""

try:
    from bertlab.probes.torch import Watch
except ModuleNotFoundError as exc:  # say which extra brings the missing framework
    if exc.name is None or exc.name.split(".")[0] != "torch":
        raise
    raise ModuleNotFoundError(
        f"bertlab.torch needs PyTorch ({exc}); install it with: pip install 'bertlab[torch]'",
        name=exc.name,
    ) from exc

__all__ = ["Watch"]
