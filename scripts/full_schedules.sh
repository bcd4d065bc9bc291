#!/usr/bin/env bash
# Full training schedules of the segmentation and classifier bundles on one CUDA GPU, then a results table.
#
#   scripts/full_schedules.sh OUT_DIR [DATASET_DIR]
#
# DATASET_DIR defaults to ../shared/data/covidqu_infection (COVID-QU-Ex Train/Val); every run trains on Train and
# selects on Val. Each job is one `python -m monai.bundle run` of a bundle's own train.json (AMP on CUDA, as the
# bundles do by default), so the figures are the bundles', not this script's. Several jobs share the GPU at once
# (JOBS of them, each with its share of the CPU cores for its DataLoader workers); every job also has a time budget
# (--time_budget_minutes), which ends it cleanly at an epoch boundary with a resumable checkpoint, so the whole
# script fits about 10 minutes on one H100/H200 (about 3 waves of JOBS=4 jobs at 3 minutes each) whatever the
# GPU's real speed turns out to be.
#
# Writes OUT_DIR/<job>/ (each run's checkpoints, model.pt, TensorBoard logs, metrics, summary.json),
# OUT_DIR/<job>.log, OUT_DIR/weights/<job>.pt (half-precision copies of the best weights) and
# OUT_DIR/results.md (`monaicxr summarize` over all runs). A job that fails is reported and the others go on;
# the exit status is 1 when any failed.
#
# Environment (defaults in brackets):
#   JOBS [4 on CUDA, 1 otherwise]   TIME_BUDGET [3 minutes per job on CUDA, none otherwise]
#   NUM_WORKERS [cores / JOBS]      ONLY [all jobs; e.g. "unet_lung densenet121"]
#   TINY [0]: 1 for the test suite's CPU smoke run: phantoms (no DATASET_DIR needed), 1 epoch, 32-64 px.
#   PYTHON [python]
set -euo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OUT_DIR=$1
DATASET_DIR=${2:-../shared/data/covidqu_infection}
PYTHON=${PYTHON:-python}
TINY=${TINY:-0}
CUDA=$("$PYTHON" -c "import torch; print(int(torch.cuda.is_available()))")
JOBS=${JOBS:-$([[ $CUDA == 1 ]] && echo 4 || echo 1)}
CORES=$(nproc)
NUM_WORKERS=${NUM_WORKERS:-$(( CORES / JOBS > 1 ? CORES / JOBS - 1 : 0 ))}
TIME_BUDGET=${TIME_BUDGET:-$([[ $CUDA == 1 ]] && echo 3 || echo "")}
mkdir -p "$OUT_DIR/weights"

if [[ $TINY != 1 && ! -d $DATASET_DIR ]]; then
    echo "full_schedules.sh: dataset folder $DATASET_DIR does not exist" >&2
    exit 2
fi
if [[ $CUDA != 1 && $TINY != 1 ]]; then
    echo "full_schedules.sh: no CUDA GPU here; these schedules are sized for one (set TINY=1 for a smoke run)" >&2
    exit 2
fi

# job | config files | schedule on the GPU (bundle overrides)
#   sizes: the data's native 256² for segmentation, each classifier's own input size
JOB_TABLE=$(cat <<'EOF'
unet_lung|bundles/unet/configs/train.json|--task lung --spatial_size [256,256] --batch_size 16 --num_epochs 60
unet_infection|bundles/unet/configs/train.json|--task infection --spatial_size [256,256] --batch_size 16 --num_epochs 60
unet_3level|bundles/unet/configs/train.json,bundles/unet/configs/task_3level.json|--spatial_size [256,256] --batch_size 16 --num_epochs 60
resunet_infection|bundles/resunet/configs/train.json|--task infection --spatial_size [256,256] --batch_size 16 --num_epochs 60
u2net_lung|bundles/u2net/configs/train.json|--task lung --spatial_size [256,256] --batch_size 16 --num_epochs 40
u2net_multitask|bundles/u2net/configs/train.json,bundles/u2net/configs/multitask.json|--spatial_size [256,256] --batch_size 16 --num_epochs 40
simple_cnn|bundles/simple_cnn/configs/train.json|--num_epochs 50
densenet121|bundles/densenet121/configs/train.json|--num_epochs 30
efficientnet_b0|bundles/efficientnet_b0/configs/train.json|--num_epochs 30
vgg16|bundles/vgg16/configs/train.json|--num_epochs 20
xception|bundles/xception/configs/train.json|--num_epochs 20
EOF
)

run_job() {  # name, config files (comma-separated), overrides
    local name=$1 configs=$2 overrides=$3
    local config_arg
    if [[ $configs == *,* ]]; then
        config_arg="['${configs//,/\',\'}']"
    else
        config_arg=$configs
    fi
    local args=(--config_file "$config_arg" --output_dir "$OUT_DIR/$name" --num_workers "$NUM_WORKERS"
                --show_progress False)
    if [[ $TINY == 1 ]]; then  # keep only the task from the GPU schedule
        [[ $overrides =~ --task\ ([a-z0-9]+) ]] && args+=(--task "${BASH_REMATCH[1]}")
        args+=(--num_epochs 1 --batch_size 4 --synthetic_per_class 8)
        args+=(--spatial_size "$([[ $name == xception ]] && echo '[71,71]' || echo '[64,64]')")
    else
        # shellcheck disable=SC2206
        args+=($overrides --dataset_dir "$DATASET_DIR")
    fi
    [[ -n $TIME_BUDGET ]] && args+=(--time_budget_minutes "$TIME_BUDGET")
    local start=$SECONDS
    if "$PYTHON" -m monai.bundle run "${args[@]}" > "$OUT_DIR/$name.log" 2>&1; then
        if ! "$PYTHON" -m monaicxr.cli.main shrink-weights "$OUT_DIR/$name/models/model.pt" \
                "$OUT_DIR/weights/$name.pt" >> "$OUT_DIR/$name.log" 2>&1; then
            echo "FAILED $name: trained, but no half-precision copy of its model.pt: see $OUT_DIR/$name.log" >&2
            return 1
        fi
        echo "done   $name in $(( SECONDS - start )) s"
    else
        echo "FAILED $name after $(( SECONDS - start )) s: see $OUT_DIR/$name.log" >&2
        return 1
    fi
}
export -f run_job
export OUT_DIR DATASET_DIR PYTHON TINY NUM_WORKERS TIME_BUDGET

echo "full_schedules.sh: CUDA=$CUDA JOBS=$JOBS NUM_WORKERS=$NUM_WORKERS TIME_BUDGET=${TIME_BUDGET:-none} TINY=$TINY"
start=$SECONDS
status=0
echo "$JOB_TABLE" | while IFS='|' read -r name configs overrides; do
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then
        continue
    fi
    printf '%s\0%s\0%s\0' "$name" "$configs" "$overrides"
done | xargs -0 -n 3 -P "$JOBS" bash -c 'run_job "$@"' _ || status=1

seg_runs=()
cls_runs=()
for d in "$OUT_DIR"/*/; do
    [[ -f $d/summary.json ]] || continue
    if grep -q '"val_dice"' "$d/summary.json"; then seg_runs+=("$d"); else cls_runs+=("$d"); fi
done
runs=("${seg_runs[@]}" "${cls_runs[@]}")
: > "$OUT_DIR/results.md"
for family in seg cls; do
    declare -n group="${family}_runs"
    if [[ ${#group[@]} -gt 0 ]]; then
        "$PYTHON" -m monaicxr.cli.main summarize "${group[@]}" >> "$OUT_DIR/results.md" || status=1
        echo >> "$OUT_DIR/results.md"
    fi
done
cat "$OUT_DIR/results.md"
echo "full_schedules.sh: ${#runs[@]} run(s) in $(( SECONDS - start )) s; table in $OUT_DIR/results.md"
exit $status
