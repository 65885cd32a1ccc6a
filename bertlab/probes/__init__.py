"""Framework adapters ("probes") that feed a :class:`bertlab.run.Run`."""
