"""TFRecord writing shared by the data stages: int64 tf.Examples, serialized deterministically (map order
fixed) so reruns and different process counts write byte-identical files, renamed into place when complete.

Example:
    write_tfrecord("out/dev.tfrecord", [{"input_ids": [2, 15, 3], "input_mask": [1, 1, 1]}])
"""

from typing import Iterable, Sequence

import tensorflow as tf

from data_prep import storage


def int64_feature_spec(names, length: int) -> dict:
    """How `dataset.json` describes fixed-length int64 features."""
    return {name: {"dtype": "int64", "shape": [length]} for name in names}


def write_tfrecord(path: str, rows: Iterable[dict[str, Sequence[int]]]) -> int:
    """Writes each row of int64 features as a tf.Example; returns how many.

    A tuple is taken to be immutable: when a row hands over the very tuple the previous row had (the shared
    input_mask of full pretraining examples), the message still holds its values and is not refilled.
    """
    # One message refilled per row costs less than a new one per row.
    example, previous, count = tf.train.Example(), {}, 0
    with storage.atomic_output(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for count, row in enumerate(rows, 1):
            if row.keys() != previous.keys():  # a feature of the previous row must not linger
                example.Clear()
                values_of = {name: example.features.feature[name].int64_list.value for name in row}
                previous = {}
            for name, values in row.items():
                if values is not previous.get(name) or type(values) is not tuple:
                    values_of[name][:] = values
            previous = dict(row)  # a copy: a producer may refill one dict for every row
            writer.write(example.SerializeToString(deterministic=True))
    return count
