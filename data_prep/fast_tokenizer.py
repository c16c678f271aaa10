"""A transformers fast tokenizer with BertJapaneseTokenizer's ids and character offsets, for the pipelines that need
offsets: token-classification groups a word's WordPieces (aggregation "first") only with a fast tokenizer, and
BertJapaneseTokenizer is a slow one without offsets.

It is the `tokenizers` library's WordPiece behind NFKC, with MeCab (this package's splitter, so the same words)
as a custom pre-tokenizer. Custom pre-tokenizers cannot be saved in a tokenizer.json, so it is built from a
tokenizer dir (ours, or a transformers dir with BertJapaneseTokenizer files) each time it is needed.

Example:
    from transformers import pipeline
    tagger = pipeline("token-classification", model="build/demo/hf", tokenizer=fast_tokenizer("build/demo/hf"),
                      aggregation_strategy="first")
    tagger("ヘンリック・イプセンの劇詩")      # entities with start/end in the text
"""

from tokenizers import NormalizedString, PreTokenizedString, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from data_prep.tokenizer import CLS, MASK, MAX_INPUT_CHARS_PER_WORD, PAD, SEP, UNK, JapaneseTokenizer
from data_prep.words import MecabWordSplitter


class _MecabPreTokenizer:
    """Splits the normalized text into MeCab's words, keeping each piece's alignment to the original text."""

    def __init__(self, splitter: MecabWordSplitter):
        self.splitter = splitter

    def _words(self, _, normalized: NormalizedString) -> list[NormalizedString]:
        text, words, position = str(normalized), [], 0
        for surface in self.splitter.split_normalized(text):
            begin = text.index(surface, position)  # MeCab only skips whitespace between words
            position = begin + len(surface)
            words.append(normalized[begin:position])
        return words

    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        pretokenized.split(self._words)


def fast_tokenizer(directory: str, flag: str = "--tokenizer"):
    """A `transformers.PreTrainedTokenizerFast` for the tokenizer dir `directory`."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = JapaneseTokenizer.load(directory, flag)
    backend = Tokenizer(WordPiece(tokenizer.token_to_id, unk_token=UNK,
                                  max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
    if tokenizer.splitter.normalize_text:
        backend.normalizer = normalizers.NFKC()
    cls, sep = tokenizer.id_of(CLS), tokenizer.id_of(SEP)
    backend.post_processor = processors.TemplateProcessing(single=f"{CLS} $A {SEP}",
                                                           pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
                                                           special_tokens=[(CLS, cls), (SEP, sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK, sep_token=SEP, pad_token=PAD,
                                   cls_token=CLS, mask_token=MASK, model_max_length=tokenizer.model_max_length)
    # Set after construction: PreTrainedTokenizerFast copies its backend by serializing it, which a custom
    # pre-tokenizer does not survive.
    fast.backend_tokenizer.pre_tokenizer = pre_tokenizers.PreTokenizer.custom(_MecabPreTokenizer(tokenizer.splitter))
    return fast
