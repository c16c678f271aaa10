"""Readers for UD_Japanese-GSD NE: `*.ne.conllu` (BILU tags in MISC `NE=`) and the release's `*.bio` files.

Both give sentences with their raw text and gold entities as character spans in that text, which is what
the rest of the pipeline works with (MeCab's words need not coincide with GSD's).

Example:
    sentences = load_split("data/ud_japanese_gsd_ne/r2.8-NE", "dev")   # or load_gsd(...) for all three
    s = sentences[0]; [s.text[e.start:e.end] for e in s.entities]      # ['50周年']
"""

from tensorflow.io import gfile

from data_prep import storage
from data_prep.entities import Sentence, tag_entities
from data_prep.errors import InputError
from data_prep.ner_formats import conll_blocks
from data_prep.splits import SPLITS, Splits


def load_gsd(gsd_dir: str) -> Splits:
    """GSD's own train, dev and test."""
    return Splits({split: load_split(gsd_dir, split) for split in SPLITS}, {"gsd": gsd_dir})


def load_split(gsd_dir: str, split: str) -> list[Sentence]:
    """The split from `ja_gsd-ud-SPLIT.ne.conllu` if present, else from `SPLIT.bio` (+ `text/SPLIT.txt`)."""
    conllu = storage.join(gsd_dir, f"ja_gsd-ud-{split}.ne.conllu")
    bio = storage.join(gsd_dir, f"{split}.bio")
    if gfile.exists(conllu):
        path, sentences = conllu, read_conllu(conllu)
    elif gfile.exists(bio):
        text = storage.join(gsd_dir, "text", f"{split}.txt")
        path, sentences = bio, read_bio(bio, text if gfile.exists(text) else None)
    else:
        raise InputError(f"--gsd {gsd_dir}: neither ja_gsd-ud-{split}.ne.conllu nor {split}.bio found")
    if not sentences:
        raise InputError(f"{path}: no sentences")
    return sentences


def read_conllu(path: str) -> list[Sentence]:
    sentences, block = [], []
    for number, line in _numbered_lines(path):
        if line.strip():
            block.append((number, line))
        elif block:
            sentences.append(_conllu_sentence(path, block))
            block = []
    if block:
        sentences.append(_conllu_sentence(path, block))
    return sentences


def read_bio(path: str, text_path: str | None = None) -> list[Sentence]:
    """`token<TAB>label` lines in IOB2; without `text_path` the text is the tokens joined with no spaces."""
    blocks = conll_blocks(path)
    texts = [line for _, line in _numbered_lines(text_path)] if text_path else None
    if texts is not None and len(texts) != len(blocks):
        raise InputError(f"{text_path}: {len(texts)} lines but {path} has {len(blocks)} sentences")
    sentences = []
    for index, block in enumerate(blocks):
        forms = [form for _, form, _ in block]
        text = texts[index] if texts is not None else "".join(forms)
        spans = _locate(forms, text, f"{text_path}:{index + 1}")
        tags = [(number, tag) for number, _, tag in block]
        sentences.append(Sentence(f"{path.rsplit('/', 1)[-1]}-{index + 1}", text, tag_entities(tags, spans, "iob2", path)))
    return sentences


def _numbered_lines(path: str):
    for number, line in storage.read_lines(path):
        yield number, line.rstrip("\n")


def _conllu_sentence(path: str, block: list[tuple[int, str]]) -> Sentence:
    comments = {}
    forms, space_after, tags = [], [], []
    for number, line in block:
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            comments[key.strip()] = value.strip()
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise InputError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
        if "-" in columns[0] or "." in columns[0]:
            continue  # multiword-token ranges and empty nodes carry no surface of their own
        if not columns[1]:
            raise InputError(f"{path}:{number}: empty FORM (column 2)")
        misc = dict(item.partition("=")[::2] for item in columns[9].split("|") if item != "_")
        forms.append(columns[1])
        space_after.append(misc.get("SpaceAfter") != "No")
        tags.append((number, misc.get("NE", "O")))
    first_line = block[0][0]
    if not forms:
        raise InputError(f"{path}:{first_line}: sentence without tokens")
    text = "".join(form + (" " if space and i < len(forms) - 1 else "") for i, (form, space)
                   in enumerate(zip(forms, space_after)))
    if "text" in comments and comments["text"] != text:
        raise InputError(f"{path}:{first_line}: '# text' does not match the tokens and SpaceAfter "
                         f"({comments['text']!r} vs {text!r})")
    spans = _locate(forms, text, f"{path}:{first_line}")
    return Sentence(comments.get("sent_id", f"line-{first_line}"), text, tag_entities(tags, spans, "bioes", path))


def _locate(forms: list[str], text: str, where: str) -> list[tuple[int, int]]:
    """Each token's [start, end) in `text`; only whitespace may separate tokens."""
    spans, position = [], 0
    for form in forms:
        start = position
        while start < len(text) and text[start].isspace() and not form[0].isspace():
            start += 1
        if text[start:start + len(form)] != form:
            raise InputError(f"{where}: token {form!r} not found at character {start} of {text!r}")
        spans.append((start, start + len(form)))
        position = start + len(form)
    return spans
