from __future__ import annotations

from .rsu import RSUBlock
from .separable import SeparableConv, XceptionBlock

__all__ = ["RSUBlock", "SeparableConv", "XceptionBlock"]
