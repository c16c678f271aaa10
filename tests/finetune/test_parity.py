"""Fine-tuning computes what the reference implementation (transformers' PyTorch ElectraForTokenClassification,
torch's AdamW with the same layer-wise rates) computes: per-step losses with dropout off, from a pretrained encoder
(benchmarks/finetune_parity.py; docs/results.md has the CPU recipe's run, with dropout and seeds too)."""

from benchmarks.finetune_parity import step_losses
from data_prep.tokenizer import JapaneseTokenizer
from finetune.data import NerData
from finetune.trainer import Initialization


def test_fifty_steps_follow_the_reference_losses(ner_dir, pretrain_dir, debug_config):
    data = NerData.load(ner_dir[0])
    init = Initialization.resolve(pretrain_dir, debug_config, data, JapaneseTokenizer.load(data.tokenizer_dir))
    ours, theirs = step_losses(debug_config, data, init, 50, seed=7)
    assert len(ours) == 50 and min(ours[-10:]) < ours[0] * 0.7  # it trains
    gaps = [abs(a - b) / abs(b) for a, b in zip(ours, theirs)]
    assert max(gaps) <= 0.01, (max(gaps), gaps.index(max(gaps)))
