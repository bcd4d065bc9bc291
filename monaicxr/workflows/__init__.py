"""End-to-end workflows over the bundles: plain functions that the ``monaicxr`` sub-commands call.

Import them from their modules (``monaicxr.workflows.predict.predict``, ``monaicxr.workflows.bundles``,
``monaicxr.workflows.segment_classify``): the package itself imports nothing, so that a light workflow module or
the CLI's parser does not pull in torch.
"""
