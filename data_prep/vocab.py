"""Trains a WordPiece vocabulary on MeCab words with the `tokenizers` library (`electra-ja vocab`).

The trainer sees exactly the words BertJapaneseTokenizer will later hand to WordPiece (NFKC + MeCab-ipadic +
whitespace split), so every trained piece is reachable at encoding time.

Example:
    tokenizer = train_vocab(["build/demo/corpus"], vocab_size=4000, out_dir="build/demo/tokenizer")
"""

import collections
import tempfile

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tqdm import tqdm

from data_prep import storage
from data_prep.config import VocabConfig
from data_prep.errors import InputError
from data_prep.tokenizer import SPECIAL_TOKENS, UNK, JapaneseTokenizer
from data_prep.words import MecabWordSplitter


def train_vocab(files: list[str], config: VocabConfig, out_dir: str) -> JapaneseTokenizer:
    with storage.output_dir(out_dir, "--out"):
        tokenizer = JapaneseTokenizer(_train_pieces(files, config))
        tokenizer.save(out_dir)
    return tokenizer


def _train_pieces(files: list[str], config: VocabConfig) -> list[str]:
    """The special tokens, then the trained WordPieces sorted."""
    # MeCab runs once; its output waits in a local temporary file, not in memory (Wikipedia is gigabytes).
    with tempfile.TemporaryFile("w+", encoding="utf-8") as words:
        counts = _split_to(files, MecabWordSplitter(), words)
        if not counts:
            raise InputError(f"--corpus {' '.join(files)}: no text to train a vocabulary on")
        alphabet = _alphabet(counts, config.limit_alphabet)
        # Every character also continues words ("##c"), as in BERT's vocabularies, so a word holding a character
        # that training saw only at word starts is not [UNK] later. Given up front, these pieces get their ids in
        # the alphabet's fixed order; left to the trainer they got them in Rust hash order, which differs per run,
        # and the ids break ties among equally frequent merges, so the vocabulary differed from run to run.
        fixed_tokens = list(SPECIAL_TOKENS) + ["##" + char for char in alphabet]
        if config.vocab_size < len(fixed_tokens) + len(alphabet):
            raise InputError(f"vocab.vocab_size (--vocab-size) {config.vocab_size}: smaller than the {len(alphabet)} "
                             f"characters of the alphabet (vocab.limit_alphabet {config.limit_alphabet}), their "
                             "##-continuations and the special tokens")
        model = Tokenizer(models.WordPiece(unk_token=UNK))
        model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.WordPieceTrainer(
            vocab_size=config.vocab_size,
            min_frequency=config.min_frequency,
            # The trainer breaks ties among equally frequent characters in hash order too; choosing the alphabet
            # here (frequency, then code point) leaves it no choice.
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            special_tokens=fixed_tokens,
            continuing_subword_prefix="##",
            show_progress=False,
        )
        words.seek(0)
        model.train_from_iterator(words, trainer)
    # WordPiece encodes by longest match, so ids carry no meaning beyond the specials' fixed 0-4: sorting the rest
    # makes vocab.txt independent of the trainer's id order.
    return list(SPECIAL_TOKENS) + sorted(set(model.get_vocab()) - set(SPECIAL_TOKENS))


def _split_to(files: list[str], splitter: MecabWordSplitter, out) -> collections.Counter:
    """Writes each line's MeCab words, space-separated, to `out`; returns the characters' counts."""
    counts = collections.Counter()
    for path in tqdm(files, desc="vocab: MeCab", unit="file"):
        for _, line in storage.read_lines(path):
            words = splitter.split(line)
            if words:
                joined = " ".join(words)
                counts.update(joined)
                out.write(joined + "\n")
    return counts


def _alphabet(counts: collections.Counter, limit: int) -> list[str]:
    characters = [char for char in counts if not char.isspace()]
    return sorted(characters, key=lambda char: (-counts[char], char))[:limit]
