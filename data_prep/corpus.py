"""Pretraining corpus (`electra-ja corpus`): Wikipedia from tensorflow-datasets or plain text files, cleaned
and split into sentences, one per line, a blank line between documents, in text shards.

Cleaning follows the seed's shell pipeline: NFKC; drop paragraphs that do not end in 。 (closing brackets
after it allowed; `require_final_period: false` keeps them, for text whose lines are sentences, like GSD's), `Category:` lines and `thumb|` image captions; split after 。 and after any 」 』 ) right
behind it; drop sentences outside [min_sentence_chars, max_sentence_chars]. Documents longer than
max_document_sentences are cut into pieces, so an unstructured text file still spreads over many shards.

Example:
    documents = documents_from_source("tfds:wikipedia/20230601.ja")
    stats = write_corpus(documents, "gs://bucket/corpus", CorpusConfig())
"""

import collections
import contextlib
import re
import unicodedata
from typing import Iterable, Iterator

from tensorflow.io import gfile
from tqdm import tqdm

from data_prep import storage
from data_prep.config import CorpusConfig
from data_prep.errors import InputError

TFDS_PREFIX = "tfds:"
SHARD_PATTERN = "sentences-{index:05d}-of-{count:05d}.txt"
_CLOSERS = "」』)"  # NFKC has already turned ） into )
_SENTENCE = re.compile(f"[^。]*。[{_CLOSERS}]*")


def clean_paragraph(paragraph: str, config: CorpusConfig, counts: collections.Counter) -> list[str]:
    """The sentences of one paragraph that survive cleaning; `counts` tallies what was dropped and why."""
    line = unicodedata.normalize("NFKC", paragraph).strip()
    if not line:
        return []
    if line.startswith("Category:") or "thumb|" in line:
        counts["paragraphs_markup"] += 1
        return []
    ends_in_period = line.rstrip(_CLOSERS).endswith("。")
    if config.require_final_period and not ends_in_period:
        counts["paragraphs_without_final_period"] += 1
        return []
    pieces = _SENTENCE.findall(line)
    if not ends_in_period:  # the text after the last 。 is a sentence of its own
        pieces.append(line[sum(map(len, pieces)):])
    sentences = []
    for sentence in (s.strip() for s in pieces):
        if config.min_sentence_chars <= len(sentence) <= config.max_sentence_chars:
            sentences.append(sentence)
        else:
            counts["sentences_out_of_length"] += 1
    return sentences


def documents_from_source(sources: list[str], text_field: str = "text", split: str = "train",
                          tfds_data_dir: str | None = None) -> Iterator[list[str]]:
    """Each document as its list of paragraphs, from `tfds:NAME[/CONFIG]` or text files (blank line = new document)."""
    tfds_names = [s for s in sources if s.startswith(TFDS_PREFIX)]
    if tfds_names and len(sources) > 1:
        raise InputError("--source: give either one tfds:NAME or text files, not both")
    if tfds_names:
        return _tfds_documents(tfds_names[0][len(TFDS_PREFIX):], text_field, split, tfds_data_dir)
    return read_documents(storage.expand_inputs(sources, "--source"))


def write_corpus(documents: Iterable[list[str]], out_dir: str, config: CorpusConfig) -> dict:
    """Writes the cleaned documents round-robin into `config.num_shards` shards; returns the statistics."""
    paths = [storage.join(out_dir, SHARD_PATTERN.format(index=i, count=config.num_shards))
             for i in range(config.num_shards)]
    counts = collections.Counter()
    # Each shard is renamed into place only if every document was written.
    with storage.output_dir(out_dir, "--out"), contextlib.ExitStack() as stack:
        writers = [stack.enter_context(gfile.GFile(stack.enter_context(storage.atomic_output(p)), "w")) for p in paths]
        for writer in writers:
            writer.write("")  # GFile creates its file on the first write; a shard without documents must exist too
        for paragraphs in tqdm(documents, desc="corpus", unit="doc"):
            counts["documents_read"] += 1
            sentences = [s for p in paragraphs for s in clean_paragraph(p, config, counts)]
            for start in range(0, len(sentences), config.max_document_sentences):
                piece = sentences[start:start + config.max_document_sentences]
                writers[counts["documents"] % len(writers)].write("\n".join(piece) + "\n\n")
                counts["documents"] += 1
                counts["sentences"] += len(piece)
        if counts["sentences"] == 0:
            raise InputError(f"--source: no sentence survived cleaning ({counts['documents_read']} documents read)")
    _remove_other_shards(out_dir, keep=paths)
    stats = dict(counts, shards=[p.rsplit("/", 1)[-1] for p in paths])
    storage.write_json(storage.join(out_dir, "corpus.json"), stats)
    return stats


def read_documents(paths: list[str]) -> Iterator[list[str]]:
    """Each document of the text files as its list of lines; blank lines and file ends separate documents."""
    for path in paths:
        paragraphs = []
        for _, line in storage.read_lines(path):
            if line.strip():
                paragraphs.append(line)
            elif paragraphs:
                yield paragraphs
                paragraphs = []
        if paragraphs:
            yield paragraphs


def _tfds_documents(name: str, text_field: str, split: str, data_dir: str | None) -> Iterator[list[str]]:
    import tensorflow_datasets as tfds

    try:
        # Never prepare here: building Wikipedia needs Apache Beam and hours; prepared copies are on GCS.
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        raise InputError(f"--source tfds:{name}: {str(error).splitlines()[0]}") from None
    except AssertionError:  # tfds' way of saying the data is not prepared there
        raise InputError(f"--source tfds:{name}: not prepared under --tfds-data-dir {data_dir or '(tfds default)'}; "
                         f"use --tfds-data-dir gs://tfds-data/datasets or run `tfds build {name}` first") from None
    if text_field not in dataset.element_spec:
        raise InputError(f"--text-field {text_field}: tfds:{name} has fields {', '.join(dataset.element_spec)}")
    for example in tfds.as_numpy(dataset):
        yield example[text_field].decode("utf-8").split("\n")


def _remove_other_shards(out_dir: str, keep: list[str]) -> None:
    """A rerun with fewer shards must not leave the old run's extra shards to be read as corpus."""
    for path in gfile.glob(storage.join(out_dir, "sentences-*-of-*.txt")):
        if path not in keep:
            gfile.remove(path)
