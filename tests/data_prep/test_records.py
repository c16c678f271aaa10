import tensorflow as tf

from data_prep.records import write_tfrecord

SHARED = (1, 1, 0)
ROWS = [
    {"input_ids": [2, 15, 3, 0], "input_mask": [1, 1, 1, 0]},
    {"input_ids": [2, 300_000, 3, 4], "input_mask": [1, 1, 1, 1]},
    {"input_ids": [2, 3]},  # another set of features: the previous row's input_mask must not linger
    {"input_ids": [2, 3], "labels": [-1, 7]},
    {"input_ids": [2, 3, 0], "input_mask": SHARED},
    {"input_ids": [2, 4, 0], "input_mask": SHARED},  # the very same tuple: kept, not refilled
    {"input_ids": [2, 5, 0], "input_mask": (1, 1, 0)},  # an equal tuple
    {"input_ids": [2, 6, 0], "segment_ids": SHARED},
    {"input_ids": [2, 7, 0], "input_mask": SHARED},  # the tuple again, after a row without it
]


def test_each_row_is_the_tf_example_of_its_own_features(tmp_path):
    path = str(tmp_path / "rows.tfrecord")
    assert write_tfrecord(path, iter(ROWS)) == len(ROWS)
    expected = []
    for row in ROWS:
        example = tf.train.Example()
        for name, values in row.items():
            example.features.feature[name].int64_list.value.extend(values)
        expected.append(example.SerializeToString(deterministic=True))
    assert [record.numpy() for record in tf.data.TFRecordDataset(path)] == expected


def test_a_producer_may_refill_one_dict_and_its_lists_for_every_row(tmp_path):
    path = str(tmp_path / "reused.tfrecord")

    def refilled_rows():
        row, lists = {}, {}
        for original in ROWS:
            row.clear()
            for name, values in original.items():
                if isinstance(values, list):
                    values = lists.setdefault(name, [])
                    values[:] = original[name]
                row[name] = values
            yield row

    write_tfrecord(path, refilled_rows())
    write_tfrecord(str(tmp_path / "fresh.tfrecord"), ROWS)
    assert (tmp_path / "reused.tfrecord").read_bytes() == (tmp_path / "fresh.tfrecord").read_bytes()


def test_no_rows_write_an_empty_file(tmp_path):
    path = tmp_path / "empty.tfrecord"
    assert write_tfrecord(str(path), []) == 0
    assert path.read_bytes() == b""
