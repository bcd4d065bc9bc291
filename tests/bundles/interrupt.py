"""Run ``python -m monai.bundle`` and SIGKILL the process at a chosen moment (the resume tests' hard kill).

Usage::

    python tests/bundles/interrupt.py iteration=5 run --config_file ...      # as the 5th training step starts
    python tests/bundles/interrupt.py save=checkpoint_epoch=2.pt run ...     # halfway through writing that file

``save=NAME`` writes the first half of the serialised checkpoint into its temporary file, syncs it and kills the
process, as a power cut or an out-of-memory kill during the write would leave it. Test-only: nothing in
``monaicxr`` knows about it.
"""

from __future__ import annotations

import io
import os
import runpy
import signal
import sys


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    when, args = sys.argv[1], sys.argv[2:]
    kind, _, arg = when.partition("=")
    if kind == "save":
        import torch

        real_save = torch.save

        def save(obj, f, *a, **k):
            if str(getattr(f, "name", f)).endswith(arg + ".tmp"):
                buffer = io.BytesIO()
                real_save(obj, buffer, *a, **k)
                data = buffer.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                _kill()
            return real_save(obj, f, *a, **k)

        torch.save = save
    elif kind == "iteration":
        from monai.engines import SupervisedTrainer

        real_iteration = SupervisedTrainer._iteration

        def _iteration(self, engine, batchdata):
            if engine.state.iteration == int(arg):
                _kill()
            return real_iteration(self, engine, batchdata)

        SupervisedTrainer._iteration = _iteration
    else:
        raise SystemExit(f"unknown moment {when!r}: use iteration=K or save=NAME")
    sys.path[0] = os.getcwd()  # as under ``python -m``: the checkout's monaicxr, not an installed one
    sys.argv = ["monai.bundle", *args]
    runpy.run_module("monai.bundle", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
