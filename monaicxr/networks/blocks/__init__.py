from __future__ import annotations

from .dropout import Dropout
from .rsu import RSUBlock
from .separable import SeparableConv, XceptionBlock

__all__ = ["Dropout", "RSUBlock", "SeparableConv", "XceptionBlock"]
