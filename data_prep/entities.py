"""Sentences with gold entities as character spans (what ner-data labels and evaluation scores), and the tag
schemes that mark entities on tokens: IOB2, IOB1 and BIOES (BILOU), read strictly.

Example:
    tag_entities([(1, "B-人名"), (2, "I-人名"), (3, "O")], [(0, 2), (2, 4), (4, 5)], "iob2", "train.bio")
    # [Entity(start=0, end=4, type='人名')]
"""

from dataclasses import dataclass, field

from data_prep.errors import InputError

TAG_SCHEMES = ("iob2", "iob1", "bioes")
_BIOES_ALIASES = {"L": "E", "U": "S"}  # BILOU's names for the last and single tags


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    type: str


@dataclass
class Sentence:
    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)


def tag_entities(tags: list[tuple[int, str]], spans: list[tuple[int, int]], scheme: str, path: str) -> list[Entity]:
    """Character spans of the entities a sentence's tags mark (`tags`: (line, tag); `spans`: each token's)."""
    entities, open_type, open_start, previous_end = [], None, None, None

    def close():
        entities.append(Entity(open_start, previous_end, open_type))

    for (number, tag), (start, end) in zip(tags, spans):
        prefix, _, kind = tag.partition("-")
        prefix = _BIOES_ALIASES.get(prefix, prefix) if scheme == "bioes" else prefix
        allowed = {"iob2": ("B", "I"), "iob1": ("B", "I"), "bioes": ("B", "I", "E", "S")}[scheme]
        if tag != "O" and (prefix not in allowed or not kind):
            raise InputError(f"{path}:{number}: tag {tag!r} is not O or {'/'.join(allowed)}-TYPE ({scheme})")
        inside = open_type is not None and open_type == kind
        if scheme == "bioes" and open_type is not None and prefix not in ("I", "E"):
            raise InputError(f"{path}:{number}: {tag} follows an unfinished {open_type} entity (BIOES closes one "
                             "with E-)")
        if scheme == "bioes" and prefix in ("I", "E") and not inside:
            raise InputError(f"{path}:{number}: {tag} does not continue an open {kind} entity (BIOES)")
        if scheme == "iob2" and prefix == "I" and not inside:
            raise InputError(f"{path}:{number}: {tag} does not continue an open {kind} entity (IOB2 opens one "
                             "with B-; is the file IOB1? see --tag-scheme)")
        opens = prefix in ("B", "S") or (prefix == "I" and not inside)
        if open_type is not None and (tag == "O" or opens):
            close()
            open_type = None
        if tag != "O" and opens:
            open_type, open_start = kind, start
        previous_end = end
        if scheme == "bioes" and prefix in ("E", "S"):
            close()
            open_type = None
    if open_type is not None:
        if scheme == "bioes":
            raise InputError(f"{path}:{tags[-1][0]}: the sentence ends inside a {open_type} entity (BIOES closes one "
                             "with E-)")
        close()
    return entities
