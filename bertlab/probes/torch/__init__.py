"""PyTorch adapter: ``bertlab.torch.Watch`` records a plain training loop from hooks."""

from bertlab.probes.torch.watch import Watch

__all__ = ["Watch"]
