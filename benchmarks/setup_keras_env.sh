#!/usr/bin/env bash
# Make benchmarks/.venv-keras: the separate virtual environment that benchmarks/keras_vs_monaicxr.py runs its
# Keras/TensorFlow side in (TensorFlow is no dependency of monaicxr and never enters the project's .venv).
#
# Usage (from anywhere; needs PyPI once, nothing at benchmark time):
#     bash benchmarks/setup_keras_env.sh            # PYTHON=python3.11 bash ... to pick the interpreter
#
# The versions are pinned so that a re-run measures the same Keras; the venv is ignored by git.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${KERAS_VENV:-$HERE/.venv-keras}"
PYTHON="${PYTHON:-python3}"

start=$(date +%s)
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# tensorflow-cpu brings keras 3, numpy and h5py; pillow reads the PNGs (keras' image utilities need it)
"$VENV/bin/python" -m pip install --quiet "tensorflow-cpu==2.21.0" "keras==3.15.*" "pillow>=10" "scipy>=1.10"
"$VENV/bin/python" - <<'EOF'
import keras, tensorflow as tf
print(f"tensorflow {tf.__version__}, keras {keras.__version__}, backend {keras.backend.backend()}")
EOF
echo "made $VENV in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)"
