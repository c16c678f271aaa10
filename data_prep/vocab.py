"""Trains a WordPiece vocabulary on MeCab words with the `tokenizers` library (`electra-ja vocab`).

The trainer sees exactly the words BertJapaneseTokenizer will later hand to WordPiece (NFKC + MeCab-ipadic +
whitespace split), so every trained piece is reachable at encoding time.

Example:
    tokenizer = train_vocab(["build/demo/corpus"], vocab_size=4000, out_dir="build/demo/tokenizer")
"""

from tensorflow.io import gfile
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tqdm import tqdm

from data_prep.config import VocabConfig
from data_prep.errors import InputError
from data_prep.tokenizer import SPECIAL_TOKENS, UNK, JapaneseTokenizer
from data_prep.words import MecabWordSplitter


def train_vocab(files: list[str], config: VocabConfig, out_dir: str) -> JapaneseTokenizer:
    splitter = MecabWordSplitter()
    model = Tokenizer(models.WordPiece(unk_token=UNK))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordPieceTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        limit_alphabet=config.limit_alphabet,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    counter = {"lines": 0}
    model.train_from_iterator(_split_lines(files, splitter, counter), trainer)
    if counter["lines"] == 0:
        raise InputError(f"--corpus {' '.join(files)}: no text to train a vocabulary on")
    vocab = sorted(model.get_vocab(), key=model.get_vocab().get)
    tokenizer = JapaneseTokenizer(vocab)
    tokenizer.save(out_dir)
    return tokenizer


def _split_lines(files, splitter, counter):
    for path in tqdm(files, desc="vocab: MeCab", unit="file"):
        with gfile.GFile(path, "r") as f:
            for line in f:
                words = splitter.split(line)
                if words:
                    counter["lines"] += 1
                    yield " ".join(words)
