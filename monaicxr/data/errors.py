"""The one error type of bad input: what every entry point raises for a file, folder or record it cannot use.

Kept in its own module (and re-exported by :mod:`monaicxr.data.records` and :mod:`monaicxr.data`) so that the
readers, transforms, handlers and the MONAI Label server can import it without the dataset records.
"""

from __future__ import annotations

__all__ = ["DatasetError"]


class DatasetError(ValueError):
    """Bad input at the dataset boundary: the message names the file or folder and what was expected."""
