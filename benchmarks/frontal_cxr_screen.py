"""Measure the "probably not a frontal chest X-ray" screen (monaicxr.workflows.ood) with predict's lung model.

Runs ``monaicxr predict``'s default lung model (``DEFAULT_MODELS["lung"]``: bundles/unet, models/model.pt) over
a seeded random sample of the COVID-QU-Ex images in ../shared/data, the real DICOM radiographs there, the
synthetic non-CXR cases of tests/workflows/test_ood.py and the first ten of its rotated radiographs, and prints
each measure's range on the real images and which images the screen flags. Re-run it whenever the default lung
weights change, and move ``FRONTAL_CXR_THRESHOLDS`` only if a real radiograph is flagged or a non-CXR is not.

Run from the repository root (the synthetic cases are imported from the tests)::

    OMP_NUM_THREADS=1 python benchmarks/frontal_cxr_screen.py --n 600 --seed 0 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MEASURES = ("confidence", "uncertain_ratio", "second_lung", "size_ratio", "left", "right")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--n", type=int, default=600, help="random COVID-QU-Ex images (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="numpy default_rng seed of the sample (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write every image's measures here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    from tqdm import tqdm

    from monaicxr.data.synthetic import make_phantom
    from monaicxr.io.reader import read_cxr
    from monaicxr.workflows.ood import frontal_cxr_check, lung_output_measures
    from monaicxr.workflows.predict import DEFAULT_MODELS, _segment, load_model
    from tests.workflows.test_ood import NOT_CXR, _as_input

    model = load_model(DEFAULT_MODELS["lung"])
    print(f"lung model: {model.weights}")

    def prob(array, meta):
        return _segment(model, array, meta)[2]

    files = sorted((args.data / "covidqu_infection" / "images").glob("*.png"))
    picked = [files[i] for i in sorted(np.random.default_rng(args.seed).choice(len(files), args.n, replace=False))]
    real = {f.name: prob(*read_cxr(f)) for f in tqdm(picked, desc="COVID-QU-Ex")}
    real |= {f"dicom/{f.name}": prob(*read_cxr(f)) for f in sorted((args.data / "dicom").glob("*.dcm"))}
    synthetic = {n: prob(*_as_input(fn())) for n, fn in NOT_CXR.items()}
    phantoms = {
        f"phantom_{k}": prob(*_as_input(make_phantom(s, size=256, kind=k).image.astype(float)))
        for s, k in enumerate(("normal", "covid", "pneumonia"))
    }
    rotated = {}
    for f in files[::100][:10]:
        array, meta = read_cxr(f)
        rotated[f"rot90/{f.name}"] = prob(np.rot90(array).copy(), meta)

    measures = {k: lung_output_measures(p) for group in (real, synthetic, phantoms, rotated) for k, p in group.items()}
    pngs = [k for k in real if not k.startswith("dicom/")]
    print(f"{len(pngs)} random COVID-QU-Ex images (seed {args.seed}):")
    for name in MEASURES:
        x = np.array([measures[k][name] for k in pngs])
        print(f"  {name:16s} min {np.nanmin(x):.3f}  median {np.nanmedian(x):.3f}  max {np.nanmax(x):.3f}")
    for title, group, should_flag in (
        ("real (COVID-QU-Ex sample and DICOM)", real, False),
        ("phantoms", phantoms, False),
        ("synthetic non-CXR", synthetic, True),
        ("rotated 90 degrees", rotated, True),
    ):
        flags = {k: frontal_cxr_check(p) for k, p in group.items()}
        n = sum(w is not None for w in flags.values())
        print(f"{title}: {n} of {len(flags)} flagged")
        for k, w in flags.items():
            if (w is not None) != should_flag:
                print(f"  {'flagged' if w else 'NOT flagged'}: {k} {w or measures[k]}")
    if args.json:
        args.json.write_text(json.dumps({"weights": str(model.weights), "measures": measures}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
