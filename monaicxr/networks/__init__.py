from __future__ import annotations

from .blocks import RSUBlock
from .nets import U2NET_CONFIGS, U2Net

__all__ = ["U2NET_CONFIGS", "RSUBlock", "U2Net"]
