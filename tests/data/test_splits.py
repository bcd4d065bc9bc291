"""Tests for monaicxr.data.splits: seeded, stratified, grouped splits and the splits.json round trip."""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from parameterized import parameterized

from monaicxr.data.records import CXRRecord, DatasetError
from monaicxr.data.splits import apply_splits, load_splits, make_splits, resolve_split_mode, write_splits

CLASSES = ("COVID-19", "Non-COVID", "Normal")


def _records(n: int = 300, pair_every: int = 7, source_split: bool = False) -> list[CXRRecord]:
    """n records over 3 classes (2:1:1); every ``pair_every``-th record shares a group with the previous one."""
    recs = []
    for i in range(n):
        cls = CLASSES[0] if i % 4 < 2 else CLASSES[i % 4 - 1]
        group = f"g{i - 1:04d}" if i % pair_every == 1 and i > 0 else f"g{i:04d}"
        recs.append(
            CXRRecord(
                id=f"img{i:04d}",
                image=f"/x/img{i:04d}.png",
                class_name=cls if i % pair_every != 1 else recs[-1].class_name,
                group=group,
                source="test",
                source_split=("train" if i % 5 else "val") if source_split else None,
            )
        )
    return recs


def _group_splits(records, splits) -> dict[str, set[str]]:
    where = {i: s for s, ids in splits.items() for i in ids}
    out: dict[str, set[str]] = {}
    for r in records:
        out.setdefault(r.group_id, set()).add(where[r.id])
    return out


def test_deterministic_and_seed_dependent():
    recs = _records()
    a = make_splits(recs, seed=3)
    assert a == make_splits(recs, seed=3)
    assert a != make_splits(recs, seed=4)


def test_input_order_independent():
    recs = _records()
    shuffled = list(recs)
    random.Random(1).shuffle(shuffled)
    assert make_splits(recs, seed=0) == make_splits(shuffled, seed=0)


def test_every_record_once():
    recs = _records()
    splits = make_splits(recs)
    ids = [i for s in ("train", "val", "test") for i in splits[s]]
    assert sorted(ids) == sorted(r.id for r in recs)
    assert all(splits[s] == sorted(splits[s]) for s in splits)


@parameterized.expand([((0.7, 0.1, 0.2),), ((0.8, 0.2, 0.0),), ((0.5, 0.25, 0.25),), ((0.6, 0.0, 0.4),)])
def test_stratified_within_one_group(ratios):
    recs = _records()
    splits = make_splits(recs, ratios=ratios, seed=11, mode="ratios")
    by_id = {r.id: r for r in recs}
    totals = Counter(r.class_name for r in recs)
    max_group = max(Counter(r.group_id for r in recs).values())
    for split, ratio in zip(("train", "val", "test"), ratios, strict=True):
        counts = Counter(by_id[i].class_name for i in splits[split])
        for cls in CLASSES:
            assert abs(counts[cls] - ratio * totals[cls]) <= max_group, (split, cls, counts[cls], ratio)
        if ratio == 0:
            assert splits[split] == []


def test_groups_never_cross_splits():
    recs = _records()
    # a near-duplicate-like pair with different classes, and a big group
    recs += [
        CXRRecord(id="dupA", image="/x/dupA.png", class_name="Normal", group="dup"),
        CXRRecord(id="dupB", image="/x/dupB.png", class_name="COVID-19", group="dup"),
    ]
    recs += [CXRRecord(id=f"pat{i}", image=f"/x/pat{i}.png", class_name="Normal", group="patient") for i in range(6)]
    for seed in range(5):
        splits = make_splits(recs, seed=seed)
        assert all(len(s) == 1 for s in _group_splits(recs, splits).values())


def test_records_without_class_form_one_stratum():
    recs = [CXRRecord(id=f"n{i:03d}", image=f"/x/{i}.png") for i in range(50)]
    splits = make_splits(recs, ratios=(0.6, 0.2, 0.2))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [30, 10, 10]


@parameterized.expand(
    [
        ("sum", (0.5, 0.2, 0.2)),
        ("negative", (1.2, -0.2, 0.0)),
        ("two", (0.8, 0.2)),
        ("nan", (float("nan"), 0.5, 0.5)),
        ("text", ("a", "b", "c")),
    ]
)
def test_bad_ratios(_, ratios):
    with pytest.raises(ValueError, match="ratios"):
        make_splits(_records(20), ratios=ratios)


def test_bad_mode_and_duplicate_ids():
    with pytest.raises(ValueError, match="mode"):
        make_splits(_records(20), mode="random")
    recs = _records(5)
    with pytest.raises(DatasetError, match="img0000"):
        make_splits(recs + [recs[0]])
    with pytest.raises(DatasetError, match="no records"):
        make_splits([])


def test_source_mode_keeps_source_split():
    recs = [CXRRecord(id=f"i{i}", image=f"/x/{i}.png", source_split=("train", "val", "test")[i % 3]) for i in range(9)]
    splits = make_splits(recs, mode="source")
    for r in recs:
        assert r.id in splits[r.source_split]


def test_source_mode_moves_crossing_group_whole():
    recs = [
        CXRRecord(id="a", image="/x/a.png", group="g", source_split="train"),
        CXRRecord(id="b", image="/x/b.png", group="g", source_split="val"),
        CXRRecord(id="c", image="/x/c.png", group="h", source_split="val"),
        CXRRecord(id="d", image="/x/d.png", group="h", source_split="val"),
        CXRRecord(id="e", image="/x/e.png", group="h", source_split="train"),
    ]
    splits = make_splits(recs, mode="source")
    assert splits == {"train": ["a", "b"], "val": ["c", "d", "e"], "test": []}


def test_source_mode_needs_source_split():
    recs = _records(10, source_split=True) + [CXRRecord(id="zz", image="/x/zz.png")]
    with pytest.raises(DatasetError, match="zz"):
        make_splits(recs, mode="source")


@parameterized.expand(
    [
        ("all_train_val", ["train", "val", "train"], "source"),
        ("with_test", ["train", "val", "test"], "source"),
        ("only_train", ["train", "train", "train"], "ratios"),
        ("none", [None, None, None], "ratios"),
    ]
)
def test_auto_mode(_, source_splits, expected):
    recs = [CXRRecord(id=f"i{i}", image=f"/x/{i}.png", source_split=s) for i, s in enumerate(source_splits)]
    assert resolve_split_mode(recs, "auto") == expected
    if expected == "source":
        assert make_splits(recs) == make_splits(recs, mode="source")


def test_auto_mode_refuses_a_partial_source_split():
    """One record without a source split must not switch the whole dataset to ratio splits."""
    recs = [CXRRecord(id=f"i{i}", image=f"/x/{i}.png", source_split=s) for i, s in enumerate(["train", "val", None])]
    with pytest.raises(DatasetError, match="i2"):
        resolve_split_mode(recs, "auto")
    assert resolve_split_mode(recs, "ratios") == "ratios"


def test_write_load_round_trip(tmp_path):
    recs = _records(40)
    splits = make_splits(recs, seed=2)
    path = write_splits(
        tmp_path / "sub" / "splits.json",
        splits,
        seed=2,
        ratios=(0.7, 0.1, 0.2),
        mode="ratios",
        source="test",
        records=recs,
    )
    content = json.loads(path.read_text())
    assert content["seed"] == 2 and content["mode"] == "ratios" and content["source"] == "test"
    assert sum(sum(c.values()) for c in content["counts"].values()) == 40
    assert content["counts"]["train"] == dict(Counter(r.class_name for r in recs if r.id in set(splits["train"])))
    loaded = load_splits(path)
    assert {s: loaded[s] for s in ("train", "val", "test")} == splits
    assert {s: [r.id for r in v] for s, v in apply_splits(recs, loaded).items()} == splits


@parameterized.expand(
    [
        ("two_splits", {"train": ["a", "b"], "val": ["b"], "test": []}, "'b'"),
        ("twice_in_one", {"train": ["a", "a"], "val": [], "test": []}, "twice"),
        ("no_val", {"train": ["a"]}, "'val'"),
        ("not_list", {"train": "a", "val": []}, "list"),
    ]
)
def test_load_splits_rejects(_, content, match):
    # parameterized.expand does not pass pytest fixtures, hence a temporary directory by hand
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "splits.json"
        path.write_text(json.dumps(content))
        with pytest.raises(DatasetError, match=match) as err:
            load_splits(path)
        assert "splits.json" in str(err.value)


def test_load_splits_missing_or_invalid(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_splits(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json"):
        load_splits(bad)


def test_apply_splits_errors():
    recs = _records(10)
    ids = [r.id for r in recs]
    with pytest.raises(DatasetError, match="ghost"):
        apply_splits(recs, {"train": ids + ["ghost"], "val": [], "test": []})
    with pytest.raises(DatasetError, match="in no split.*img0009"):
        apply_splits(recs, {"train": ids[:-1], "val": [], "test": []})
