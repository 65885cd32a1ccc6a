"""What the user sees: the live dashboard widget, its wire protocol, the standalone HTML report
and the ``%bertlab`` magic. Framework-free (they read a ``bertlab.Run``); the browser side of the
same names lives in ``js/src/``.
"""

from __future__ import annotations

import sys


def in_kernel() -> bool:
    """True inside a Jupyter kernel (notebooks, VS Code, Colab): widgets can be displayed there,
    and the dashboard shows findings instead of printed lines."""
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})
