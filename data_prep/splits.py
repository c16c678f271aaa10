"""Train, dev and test from the files a user has. A split given as a file is used as it is; a missing one is cut
from train by a seeded shuffle, so a rerun with the same file, ratio and seed gives the same sentences, and what
dev or test hold never reaches train. ner-data and cls-data record `Splits.source` in dataset.json.

Example:
    splits = cut_missing_splits({"train": records}, {"train": "data.jsonl"}, parse_ratio("80/10/10"), seed=0)
    len(splits.items["dev"])      # a tenth of the records
"""

import random
from dataclasses import dataclass

from data_prep.errors import InputError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Splits:
    """`items`: the records of each of SPLITS; `source`: where they came from, as dataset.json records it."""

    items: dict[str, list]
    source: dict


def parse_ratio(text: str) -> tuple[int, int, int]:
    """`--split TRAIN/DEV/TEST`, e.g. 80/10/10 (any positive weights; they need not sum to 100)."""
    parts = text.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or int(parts[0]) == 0:
        raise InputError(f"--split {text}: expected TRAIN/DEV/TEST weights such as 80/10/10")
    return int(parts[0]), int(parts[1]), int(parts[2])


def cut_missing_splits(given: dict[str, list], paths: dict[str, str], ratio: tuple[int, int, int],
                       seed: int) -> Splits:
    """`given` holds train and whichever of dev and test came as files (read from `paths`); the others are cut
    from train."""
    missing = [split for split in SPLITS[1:] if split not in given]
    source, items = dict(paths), dict(given)
    if not missing:
        return Splits(items, source)
    weights = dict(zip(SPLITS, ratio))
    for split in missing:
        if weights[split] == 0:
            raise InputError(f"--split {'/'.join(map(str, ratio))}: no --{split} file was given, so its weight "
                             "must be above 0")
    train = items["train"]
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    total = weights["train"] + sum(weights[split] for split in missing)
    sizes = {split: round(len(train) * weights[split] / total) for split in missing}
    if any(size == 0 for size in sizes.values()) or sum(sizes.values()) >= len(train):
        raise InputError(f"{paths['train']}: {len(train)} records are too few to cut "
                         f"{' and '.join(missing)} from them by --split {'/'.join(map(str, ratio))}")
    taken = 0
    for split in missing:
        items[split] = [train[i] for i in sorted(order[taken:taken + sizes[split]])]
        taken += sizes[split]
    items["train"] = [train[i] for i in sorted(order[taken:])]
    source["cut_from_train"] = {"split": "/".join(map(str, ratio)), "seed": seed, "splits": missing,
                                "records": {split: len(items[split]) for split in SPLITS}}
    return Splits({split: items[split] for split in SPLITS}, source)
