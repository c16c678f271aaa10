"""TFRecord writing shared by the data stages: int64 tf.Examples, serialized deterministically (map order
fixed) so reruns and different process counts write byte-identical files, renamed into place when complete.

Example:
    write_tfrecord("out/dev.tfrecord", [{"input_ids": [2, 15, 3], "input_mask": [1, 1, 1]}])
"""

from typing import Iterable

import tensorflow as tf

from data_prep import storage


def int64_feature_spec(names, length: int) -> dict:
    """How `dataset.json` describes fixed-length int64 features."""
    return {name: {"dtype": "int64", "shape": [length]} for name in names}


def write_tfrecord(path: str, rows: Iterable[dict[str, list[int]]]) -> int:
    """Writes each row of int64 features as a tf.Example; returns how many."""
    # One message refilled per row costs less than a new one per row.
    example, names, count = tf.train.Example(), None, 0
    with storage.atomic_output(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for count, row in enumerate(rows, 1):
            if row.keys() != names:  # a feature of the previous row must not linger
                example.Clear()
                features, names = example.features.feature, set(row)
            for name, values in row.items():
                features[name].int64_list.value[:] = values
            writer.write(example.SerializeToString(deterministic=True))
    return count
