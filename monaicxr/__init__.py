"""monaicxr: MONAI-based chest X-ray classification and lung / infection segmentation."""

from __future__ import annotations

__version__ = "0.1.0"
