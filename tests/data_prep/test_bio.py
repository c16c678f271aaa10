import itertools

import numpy as np

from data_prep.bio import Span, allowed_starts, allowed_transitions, best_labels, decode_bio, label_names

WORDS = [(0, 2), (2, 4), (5, 7), (7, 9), (9, 10)]


def test_label_names_are_outside_then_begin_inside_per_sorted_type():
    assert label_names({"PERSON", "GPE"}) == ["O", "B-GPE", "I-GPE", "B-PERSON", "I-PERSON"]


def test_begin_inside_sequences_become_one_span_with_the_mean_score():
    spans = decode_bio(["B-PERSON", "I-PERSON", "O", "B-GPE", "O"], WORDS, [0.9, 0.7, 1.0, 0.6, 1.0])
    assert [(s.start, s.end, s.type) for s in spans] == [(0, 4, "PERSON"), (7, 9, "GPE")]
    assert abs(spans[0].score - 0.8) < 1e-9


def test_dangling_inside_opens_a_new_entity_as_if_it_were_begin():
    # I-GPE after O, I-GPE after another type, and I-GPE at the start each open an entity of their own.
    assert decode_bio(["I-GPE", "O", "I-GPE", "I-GPE", "I-PERSON"], WORDS) == [
        Span(0, 2, "GPE"), Span(5, 9, "GPE"), Span(9, 10, "PERSON")]


def test_begin_closes_an_open_entity_of_the_same_type():
    assert decode_bio(["B-GPE", "B-GPE", "I-GPE", "O", "O"], WORDS) == [Span(0, 2, "GPE"), Span(2, 7, "GPE")]


def test_entity_running_to_the_last_word_is_closed():
    assert decode_bio(["O", "O", "O", "B-ORG", "I-ORG"], WORDS) == [Span(7, 10, "ORG")]


NAMES = ["O", "B-GPE", "I-GPE", "B-PERSON", "I-PERSON"]


def probabilities(*rows: dict[str, float]) -> np.ndarray:
    """[words, NAMES] from {label: probability} per word (unnamed labels share what is left)."""
    result = []
    for row in rows:
        rest = (1.0 - sum(row.values())) / (len(NAMES) - len(row))
        result.append([row.get(name, rest) for name in NAMES])
    return np.array(result)


def test_a_valid_argmax_is_kept_with_its_probabilities():
    probs = probabilities({"B-PERSON": 0.9}, {"I-PERSON": 0.8}, {"O": 0.7}, {"B-GPE": 0.6})
    labels, scores = best_labels(probs, NAMES)
    assert labels == ["B-PERSON", "I-PERSON", "O", "B-GPE"]
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.7, 0.6])


def test_a_stray_inside_of_another_type_takes_the_entitys_type_when_that_is_likelier():
    # argmax would end PERSON after one word and open a GPE; 0.9 x 0.4 beats every other valid second label.
    probs = probabilities({"B-PERSON": 0.9}, {"I-GPE": 0.5, "I-PERSON": 0.4, "O": 0.05})
    assert best_labels(probs, NAMES)[0] == ["B-PERSON", "I-PERSON"]


def test_an_inside_without_its_begin_becomes_whichever_valid_label_is_likelier():
    assert best_labels(probabilities({"I-GPE": 0.6, "B-GPE": 0.3}), NAMES)[0] == ["B-GPE"]
    assert best_labels(probabilities({"I-GPE": 0.6, "O": 0.3}), NAMES)[0] == ["O"]


def test_inside_may_follow_only_begin_or_inside_of_its_own_type_and_never_start():
    assert allowed_transitions(tuple(NAMES)).tolist() == [
        # to:  O     B-GPE  I-GPE  B-PER  I-PER
        [True, True, False, True, False],  # from O
        [True, True, True, True, False],  # from B-GPE
        [True, True, True, True, False],  # from I-GPE
        [True, True, False, True, True],  # from B-PERSON
        [True, True, False, True, True],  # from I-PERSON
    ]
    assert allowed_starts(tuple(NAMES)).tolist() == [True, True, False, True, False]


def valid_bio(labels: list[str]) -> bool:
    """Every I-X directly after a B-X or I-X (written out here, apart from the module's table)."""
    previous = ["O"] + labels[:-1]
    return all(not label.startswith("I-") or (before[:2] in ("B-", "I-") and before[2:] == label[2:])
               for before, label in zip(previous, labels))


def test_the_decoded_sequence_is_the_likeliest_valid_one_of_all():
    rng = np.random.default_rng(0)
    for words in range(1, 5):
        for _ in range(20):
            probs = rng.dirichlet(np.full(len(NAMES), 0.3), size=words)
            valid = [path for path in itertools.product(range(len(NAMES)), repeat=words)
                     if valid_bio([NAMES[i] for i in path])]
            likeliest = max(valid, key=lambda path: np.prod(probs[np.arange(words), path]))
            assert best_labels(probs, NAMES)[0] == [NAMES[i] for i in likeliest]


def test_a_float32_probability_far_below_1e_30_still_decides_between_valid_labels():
    probs = np.array([[1e-40, 1e-35, 1.0, 0.0, 0.0]], np.float32)  # all but nothing on a forbidden I-GPE
    assert best_labels(probs, NAMES)[0] == ["B-GPE"]


def test_no_words_no_labels():
    assert best_labels(np.zeros([0, len(NAMES)]), NAMES) == ([], [])
