"""The entry file MONAI Label loads from an app folder: it takes the ``MONAILabelApp`` subclass it finds here.

Start the server with ``python -m monaicxr.label STUDIES_DIR`` (see docs/monailabel.md). This folder is the
app folder (``--app``) for MONAI Label's own ``monailabel start_server`` as well, which then also needs
``--uvicorn_app monaicxr.label.server:app``.
"""

from monaicxr.label.compat import prepare_monailabel_imports

prepare_monailabel_imports()

from monaicxr.label.cxr_app import CXRLabelApp  # noqa: E402,F401
