#!/usr/bin/env bash
# Segment then classify, and the lung-removal shortcut check, on one dataset folder.
#
#   scripts/segment_then_classify.sh DATASET_DIR OUT_DIR [extra monaicxr compare-masking options...]
#
# 1. monaicxr index: index DATASET_DIR, split it (stratified, grouped, seeded) into OUT_DIR/data/datalist.json
# 2. monaicxr compare-masking: predict lungs with SEG_BUNDLE, then train and evaluate the classifier bundle
#    three times (unmasked, lungs kept, lungs removed) with that one split and schedule; writes
#    OUT_DIR/comparison.{csv,md,json}.
#
# Schedule and sources, overridable through the environment (defaults in brackets):
#   NUM_EPOCHS [3]  SPATIAL_SIZE [100]  MAX_ITEMS [all]  SEED [0]  EVAL_SECTION [test]
#   SEG_BUNDLE [bundles/unet] (or "reference": the dataset's own lung masks)  CLASSIFIER [bundles/simple_cnn]
#   SPLIT_MODE [ratios]  MONAICXR [monaicxr]
# Anything after OUT_DIR goes to compare-masking as is, e.g. --override batch_size=32 --seg_override
# spatial_size=[256,256]. Paths are relative to the current directory; run it from the repository root.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
DATASET_DIR=$1
OUT_DIR=$2
shift 2
MONAICXR=${MONAICXR:-monaicxr}
SEG_BUNDLE=${SEG_BUNDLE:-bundles/unet}

"$MONAICXR" index "$DATASET_DIR" --out "$OUT_DIR/data" --task classification \
    --split-mode "${SPLIT_MODE:-ratios}" --seed "${SEED:-0}"

args=(--datalist "$OUT_DIR/data/datalist.json" --output-dir "$OUT_DIR"
      --classifier-bundle "${CLASSIFIER:-bundles/simple_cnn}"
      --num-epochs "${NUM_EPOCHS:-3}" --spatial-size "${SPATIAL_SIZE:-100}"
      --seed "${SEED:-0}" --eval-section "${EVAL_SECTION:-test}")
if [[ "$SEG_BUNDLE" == reference ]]; then
    args+=(--reference-lungs)
else
    args+=(--seg-bundle "$SEG_BUNDLE")
fi
if [[ -n "${MAX_ITEMS:-}" ]]; then
    args+=(--max-items "$MAX_ITEMS")
fi
"$MONAICXR" -v compare-masking "${args[@]}" "$@"
