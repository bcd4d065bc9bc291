"""Command-line entry points: ``monaicxr`` (see :mod:`monaicxr.cli.main`)."""
