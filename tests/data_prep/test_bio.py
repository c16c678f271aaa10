from data_prep.bio import Span, decode_bio, label_names

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
