"""finetune's subcommands: `electra-ja finetune` and `electra-ja evaluate`."""

from data_prep.cli import add_config_arguments, load_config_with_flags
from data_prep.console import Command
from pretrain.cli import add_strategy_arguments


def _add_finetune_arguments(parser):
    parser.add_argument("--data", required=True, help="ner-data output directory")
    parser.add_argument("--init-checkpoint", required=True, metavar="MODEL_DIR|HF_DIR|TF1_CHECKPOINT|random",
                        help="a pretrain --model-dir, a transformers ELECTRA or BERT dir (config.json + "
                             "model.safetensors + BertJapaneseTokenizer files), a google-research/electra checkpoint "
                             "(prefix or directory; sizes from --config), or 'random'")
    parser.add_argument("--out", required=True, help="fine-tuned dir to write")
    parser.add_argument("--trials", type=int, default=1, help="seeds to run; results.json has each and mean ± std")
    add_strategy_arguments(parser)
    parser.add_argument("--num-epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    add_config_arguments(parser)


def _run_finetune(args):
    from finetune.trainer import finetune

    config = load_config_with_flags(args, "finetune", {"num_epochs": "num_epochs", "learning_rate": "learning_rate",
                                                       "batch_size": "batch_size"})
    results = finetune(config, args.data, args.init_checkpoint, args.out, args.trials, args.strategy, args.tpu)
    print(f"\nfinetune: trial {results['selected_trial']} of {args.trials} kept (best dev F1); "
          f"fine-tuned dir {args.out}")
    for split in ("dev", "test"):
        s = results[split]
        print(f"finetune {split}: precision {s['precision']:.4f}  recall {s['recall']:.4f}  F1 {s['f1']:.4f}")
    if args.trials > 1:
        for split in ("dev", "test"):
            f1 = results["summary"][split]["f1"]
            print(f"finetune {split} F1 over {args.trials} trials: {f1['mean']:.4f} ± {f1['std']:.4f}")


def _add_evaluate_arguments(parser):
    parser.add_argument("--model", required=True, help="fine-tuned dir (finetune --out)")
    parser.add_argument("--data", required=True, help="ner-data output directory")
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--batch-size", type=int, default=64)


def _run_evaluate(args):
    from data_prep import storage
    from data_prep.errors import InputError
    from data_prep.tokenizer import JapaneseTokenizer
    from finetune.data import NerData
    from finetune.evaluation import evaluate, format_scores
    from finetune.trainer import load_finetuned

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be at least 1")
    tagger, _, labels = load_finetuned(args.model)
    data = NerData.load(args.data)
    model_vocab = JapaneseTokenizer.load(storage.join(args.model, "tokenizer"), "--model").vocab_hash()
    data.check_fits(f"--model {args.model}", tagger.config, model_vocab, labels)
    print(format_scores(args.split, evaluate(tagger, data, args.split, args.batch_size), per_type=True))


finetune_command = Command("fine-tune the NER tagger on ner-data (best epoch on dev; dev and test scores)",
                           _add_finetune_arguments, _run_finetune)
evaluate_command = Command("score a fine-tuned dir on ner-data's dev or test split (char-span P/R/F1 per type)",
                           _add_evaluate_arguments, _run_evaluate)
