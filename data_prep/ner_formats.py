"""NER data in the formats people have, read into sentences with gold character spans (what ner-data labels):

- character spans, a JSON list or JSON lines of `{"text": ..., "entities": [{"span": [start, end], "type": ...}]}`
  (the Japanese Wikipedia NER dataset's format; other fields such as `curid` or `name` are ignored);
- CoNLL-style `token<TAB or space>tag` lines, a blank line between sentences, `-DOCSTART-` lines skipped, tags in
  IOB2, IOB1 or BIOES (BILOU); the text is the tokens joined by `token_separator` ("" for Japanese).

Every record or tag that cannot be read exactly is an InputError naming file:line (or the record's index in a JSON
list) and what is wrong; nothing is dropped.

Example:
    sentences = read_ner_file("train.jsonl")
    sentences = read_ner_file("train.bio", tag_scheme="iob1")
    splits = load_ner_files({"train": "wiki_ner.json"}, ratio=(80, 10, 10), seed=0)   # dev and test cut from it
"""

import json

from data_prep import storage
from data_prep.entities import TAG_SCHEMES, Entity, Sentence, tag_entities
from data_prep.errors import InputError
from data_prep.splits import Splits, cut_missing_splits


def load_ner_files(paths: dict[str, str], ratio: tuple[int, int, int], seed: int, tag_scheme: str = "auto",
                   token_separator: str = "") -> Splits:
    """`paths`: train and optionally dev and test; the splits not given are cut from train (see splits.py)."""
    given = {split: read_ner_file(path, tag_scheme, token_separator) for split, path in paths.items()}
    return cut_missing_splits(given, paths, ratio, seed)


def read_ner_file(path: str, tag_scheme: str = "auto", token_separator: str = "") -> list[Sentence]:
    """Char-span JSON/JSONL (by the extension .json/.jsonl) or a CoNLL-style tag file (anything else);
    `tag_scheme`: one of TAG_SCHEMES, or "auto" (see detect_scheme)."""
    if path.endswith((".json", ".jsonl")):
        sentences = read_char_spans(path)
    else:
        sentences = read_conll(path, tag_scheme, token_separator)
    if not sentences:
        raise InputError(f"{path}: no sentences")
    return sentences


def read_char_spans(path: str) -> list[Sentence]:
    lines = list(storage.read_lines(path))
    if "".join(line for _, line in lines[:50]).lstrip().startswith("["):
        try:
            records = json.loads("".join(line for _, line in lines))
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
        if not isinstance(records, list):
            raise InputError(f"{path}: expected a JSON list of records")
        located = [(f"{path}: record {index}", record) for index, record in enumerate(records)]
    else:
        located = []
        for number, line in (numbered for numbered in lines if numbered[1].strip()):
            try:
                located.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: not valid JSON ({error.msg})") from None
    return [_char_span_sentence(where, record, index) for index, (where, record) in enumerate(located)]


def _char_span_sentence(where: str, record, index: int) -> Sentence:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a record {{\"text\": ..., \"entities\": [...]}}")
    for field, kind in (("text", str), ("entities", list)):
        if field not in record:
            raise InputError(f"{where}: missing field {field!r}")
        if not isinstance(record[field], kind):
            raise InputError(f"{where}: {field!r} must be a {'string' if kind is str else 'list'}")
    text, entities = record["text"], []
    for number, entity in enumerate(record["entities"]):
        at = f"{where}: entity {number}"
        if not isinstance(entity, dict) or "span" not in entity or "type" not in entity:
            raise InputError(f"{at}: expected {{\"span\": [start, end], \"type\": ...}}")
        span, kind = entity["span"], entity["type"]
        if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)):
            raise InputError(f"{at}: span must be [start, end] in characters, got {span!r}")
        if not isinstance(kind, str) or not kind.strip() or any(c.isspace() for c in kind):
            raise InputError(f"{at}: type must be a name without spaces, got {kind!r}")
        start, end = span
        if start >= end:
            raise InputError(f"{at}: span {span} is {'empty' if start == end else 'reversed'}")
        if start < 0 or end > len(text):
            raise InputError(f"{at}: span {span} lies outside the text's {len(text)} characters")
        entities.append(Entity(start, end, kind))
    ordered = sorted(entities, key=lambda e: (e.start, e.end))
    for previous, entity in zip(ordered, ordered[1:]):
        if entity.start < previous.end:
            raise InputError(f"{where}: entities overlap: [{previous.start}, {previous.end}] {previous.type} and "
                             f"[{entity.start}, {entity.end}] {entity.type}")
    return Sentence(str(record.get("curid", record.get("id", index))), text, ordered)


def read_conll(path: str, tag_scheme: str = "auto", token_separator: str = "") -> list[Sentence]:
    if tag_scheme not in ("auto", *TAG_SCHEMES):
        raise InputError(f"--tag-scheme {tag_scheme}: expected auto or one of {', '.join(TAG_SCHEMES)}")
    blocks = conll_blocks(path)
    scheme = detect_scheme([[(n, tag) for n, _, tag in block] for block in blocks], path) \
        if tag_scheme == "auto" else tag_scheme
    sentences = []
    for index, block in enumerate(blocks):
        spans, text = [], ""
        for _, token, _ in block:
            text += token_separator if text else ""
            spans.append((len(text), len(text) + len(token)))
            text += token
        entities = tag_entities([(number, tag) for number, _, tag in block], spans, scheme, path)
        sentences.append(Sentence(f"{path.rsplit('/', 1)[-1]}-{index + 1}", text, entities))
    return sentences


def conll_blocks(path: str) -> list[list[tuple[int, str, str]]]:
    """Each sentence's (line number, token, tag); a tab separates token and tag where there is one, else the last
    space (so a token may hold spaces in a tab-separated file)."""
    blocks, block = [], []
    for number, line in storage.read_lines(path):
        line = line.rstrip("\r\n")
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if block:
                blocks.append(block)
            block = []
            continue
        token, _, tag = line.rpartition("\t") if "\t" in line else line.rstrip().rpartition(" ")
        if not token.strip() or not tag.strip():
            raise InputError(f"{path}:{number}: expected token<TAB>tag (or token tag), got {line!r}")
        block.append((number, token.strip(), tag.strip()))
    if block:
        blocks.append(block)
    return blocks


def detect_scheme(sentences: list[list[tuple[int, str]]], path: str) -> str:
    """The scheme of every sentence's (line, tag) list: BIOES if any E-/S-/L-/U- tag; IOB1 if entities open with
    I- (B- only splits neighbours of one type); IOB2 if every entity opens with B-; otherwise an error asking for
    --tag-scheme."""
    prefixes = {tag.partition("-")[0] for tags in sentences for _, tag in tags}
    if prefixes & {"E", "S", "L", "U"}:
        return "bioes"
    opening_i, opening_b = None, None
    for tags in sentences:
        previous = "O"
        for number, tag in tags:
            prefix, _, kind = tag.partition("-")
            continues = previous != "O" and previous.partition("-")[2] == kind
            if prefix == "I" and not continues and opening_i is None:
                opening_i = number
            if prefix == "B" and not continues and opening_b is None:
                opening_b = number
            previous = tag
    if opening_i is None:
        return "iob2"
    if opening_b is None:
        return "iob1"
    raise InputError(f"{path}: mixes IOB1 (line {opening_i}: an entity opens with I-) and IOB2 (line {opening_b}: "
                     "B- after O); name the scheme with --tag-scheme")
