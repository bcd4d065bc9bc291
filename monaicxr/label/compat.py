"""Make MONAI Label 0.8.5 importable beside pydicom 3, without pydicom-seg and SimpleITK.

At server start MONAI Label imports ``monailabel.datastore.utils.convert``, which imports pydicom-seg and
SimpleITK (264 MB) for DICOM SEG output, DICOM series to NIfTI conversion and OHIF's binary label upload. This
app offers none of these, and pydicom-seg 0.4.1 does not import on pydicom 3 anyway: it imports
``SegmentationStorage`` from ``pydicom._storage_sopclass_uids``, a private module that pydicom 3 removed
(MONAILabel issue 1841).

- :func:`placeholders_for_unused_modules` registers a stand-in module for each of the two that is not installed
  (the recommended install, docs/monailabel.md, leaves both out): the import succeeds and any use raises
  ``ModuleNotFoundError`` with the install command.
- :func:`alias_pydicom_sop_class_uids` points the old pydicom module name at ``pydicom.uid`` (same UIDs), for
  those who install pydicom-seg; DICOM SEG is still not tested here.

Neither touches an installed file. Both must run before the first ``import monailabel.app``: the entry points
:mod:`monaicxr.label.server` and the app's ``main.py`` call :func:`prepare_monailabel_imports`.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = [
    "alias_pydicom_sop_class_uids",
    "placeholders_for_unused_modules",
    "prepare_monailabel_imports",
    "UNUSED_MODULES",
]

# MONAI Label imports these at server start for features this app does not offer (see the module docstring)
UNUSED_MODULES = ("pydicom_seg", "SimpleITK")

_OLD_NAME = "pydicom._storage_sopclass_uids"


def alias_pydicom_sop_class_uids() -> None:
    """Register ``pydicom.uid`` as ``pydicom._storage_sopclass_uids`` where pydicom lacks the latter."""
    if _OLD_NAME in sys.modules:
        return
    try:
        import pydicom._storage_sopclass_uids  # noqa: F401  (pydicom 2 has it: nothing to do)
    except ModuleNotFoundError:
        import pydicom.uid

        sys.modules[_OLD_NAME] = pydicom.uid


class _MissingModule(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ModuleNotFoundError(
            f"{self.__name__}.{attr}: {self.__name__} is not installed; MONAI Label needs it for DICOM SEG, DICOM "
            f"series to NIfTI conversion and binary label upload: pip install pydicom-seg SimpleITK"
        )


def placeholders_for_unused_modules() -> None:
    """Register a stand-in for each of :data:`UNUSED_MODULES` that is not installed (see the module docstring)."""
    for name in UNUSED_MODULES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = _MissingModule(name)


def prepare_monailabel_imports() -> None:
    """Everything that must happen before the first ``import monailabel.app``."""
    alias_pydicom_sop_class_uids()
    placeholders_for_unused_modules()
