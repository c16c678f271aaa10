from data_prep.config import VocabConfig
from data_prep.tokenizer import SPECIAL_TOKENS
from data_prep.vocab import train_vocab
from tests.conftest import GSD_DIR, NOVEL

CORPUS = [str(NOVEL), str(GSD_DIR / "text" / "train.txt")]
# A vocabulary the corpus cannot fill: training runs down to pairs seen twice, where equal counts abound.
CONFIG = VocabConfig(vocab_size=32000, limit_alphabet=6000)


def test_training_twice_gives_the_same_vocabulary(tmp_path):
    first = train_vocab(CORPUS, CONFIG, str(tmp_path / "a"))
    second = train_vocab(CORPUS, CONFIG, str(tmp_path / "b"))
    assert first.vocab == second.vocab
    assert (tmp_path / "a" / "vocab.txt").read_bytes() == (tmp_path / "b" / "vocab.txt").read_bytes()


def test_every_character_also_continues_a_word(tmp_path, debug_config):
    vocab = train_vocab(CORPUS, debug_config.vocab, str(tmp_path / "t")).vocab
    assert vocab[:len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    characters = [token for token in vocab[len(SPECIAL_TOKENS):] if len(token) == 1]
    assert len(characters) > 1000
    assert [c for c in characters if "##" + c not in vocab] == []
