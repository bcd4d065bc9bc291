"""A MONAI Label app serving monaicxr's bundles: lung / infection segmentation and COVID-19 classification.

Needs MONAI Label, installed as ``docs/monailabel.md`` says (``requirements-label.txt``). Start it on a folder of
PNG / JPEG / DICOM chest X-rays with ``python -m monaicxr.label STUDIES_DIR``.

Modules: :mod:`~monaicxr.label.models` (which bundles are served, as data), :mod:`~monaicxr.label.infer` and
:mod:`~monaicxr.label.train` (the MONAI Label tasks), :mod:`~monaicxr.label.datastore`,
:mod:`~monaicxr.label.cxr_app` (the ``MONAILabelApp``; the ``app/`` folder beside it is the app folder MONAI Label loads), :mod:`~monaicxr.label.server` (the ASGI app),
:mod:`~monaicxr.label.compat` (pydicom 3 beside pydicom-seg). ``app/main.py`` is the file MONAI Label loads.
Nothing here imports MONAI Label at package import time.
"""
