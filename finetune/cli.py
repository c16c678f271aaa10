"""finetune's subcommands: `electra-ja finetune`, `electra-ja evaluate` and `electra-ja select-checkpoint`."""

from data_prep.cli import add_config_arguments, load_config_with_flags
from data_prep.console import Command
from pretrain.cli import add_strategy_arguments


def _add_finetune_arguments(parser):
    parser.add_argument("--data", required=True, help="ner-data or cls-data output directory (its task picks the head)")
    parser.add_argument("--init-checkpoint", required=True, metavar="MODEL_DIR|HF_DIR|TF1_CHECKPOINT|random",
                        help="a pretrain --model-dir (the encoder select-checkpoint chose, else the latest) or one of "
                             "its MODEL_DIR/encoder/ckpt-N, a transformers ELECTRA or BERT dir (config.json + "
                             "model.safetensors + BertJapaneseTokenizer files), a google-research/electra checkpoint "
                             "(prefix or directory; sizes from --config), or 'random'")
    parser.add_argument("--out", required=True, help="fine-tuned dir to write")
    parser.add_argument("--trials", type=int, default=1, help="seeds to run; results.json has each and mean ± std")
    _add_budget_arguments(parser)


def _add_budget_arguments(parser):
    """Where fine-tuning runs and its budget, for finetune and select-checkpoint alike."""
    add_strategy_arguments(parser)
    parser.add_argument("--num-epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    add_config_arguments(parser)


def _budget_config(args):
    return load_config_with_flags(args, "finetune", {"num_epochs": "num_epochs", "learning_rate": "learning_rate",
                                                     "batch_size": "batch_size"})


def _run_finetune(args):
    from finetune.tasks import TASKS
    from finetune.trainer import finetune

    config = _budget_config(args)
    results = finetune(config, args.data, args.init_checkpoint, args.out, args.trials, args.strategy, args.tpu)
    task = TASKS[results["task"]]
    print(f"\nfinetune: trial {results['selected_trial']} of {args.trials} kept (best dev {task.metric}); "
          f"fine-tuned dir {args.out}")
    for split in ("dev", "test"):
        print("finetune " + task.format_scores(split, results[split]))
    if args.trials > 1:
        for split in ("dev", "test"):
            for name in task.summary_metrics:
                value = results["summary"][split][name]
                print(f"finetune {split} {name} over {args.trials} trials: {value['mean']:.4f} ± {value['std']:.4f}")


def _add_evaluate_arguments(parser):
    parser.add_argument("--model", required=True, help="fine-tuned dir (finetune --out)")
    parser.add_argument("--data", required=True, help="ner-data or cls-data output directory")
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--batch-size", type=int, default=64)


def _run_evaluate(args):
    from data_prep import storage
    from data_prep.errors import InputError
    from data_prep.tokenizer import JapaneseTokenizer
    from finetune.tasks import task_of_data, task_of_model
    from finetune.trainer import load_finetuned

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be at least 1")
    tagger, description, labels = load_finetuned(args.model)
    task = task_of_data(args.data)
    if task_of_model(description, f"--model {args.model}") is not task:
        raise InputError(f"--data {args.data}: {task.name} data, but --model {args.model} was fine-tuned for "
                         f"{task_of_model(description, '').name}")
    data = task.load_data(args.data)
    model_vocab = JapaneseTokenizer.load(storage.join(args.model, "tokenizer"), "--model").vocab_hash()
    data.check_fits(f"--model {args.model}", tagger.config, model_vocab, labels)
    print(task.format_scores(args.split, task.evaluate(tagger, data, args.split, args.batch_size), per_type=True))


def _add_select_arguments(parser):
    parser.add_argument("--model-dir", required=True, help="pretrain --model-dir whose kept encoders to compare")
    parser.add_argument("--data", required=True, help="ner-data or cls-data output directory (dev scores only)")
    parser.add_argument("--trials", type=int, default=3, help="seeds per checkpoint, the same for each")
    _add_budget_arguments(parser)


def _run_select(args):
    from finetune.select_checkpoint import select_checkpoint, selection_table

    config = _budget_config(args)
    selection = select_checkpoint(config, args.model_dir, args.data, args.trials, args.strategy, args.tpu)
    print("\n" + selection_table(selection))
    print(f"select-checkpoint: step {selection['selected']['step']} marked in {args.model_dir}/selection.json "
          f"(plot: selection.png); finetune --init-checkpoint {args.model_dir} now starts from it")


finetune_command = Command("fine-tune the NER tagger or sentence classifier (best epoch on dev; dev and test scores)",
                           _add_finetune_arguments, _run_finetune)
evaluate_command = Command("score a fine-tuned dir on its data's dev or test split (scores per type or class)",
                           _add_evaluate_arguments, _run_evaluate)
select_checkpoint_command = Command("fine-tune each kept pretraining encoder, score dev, mark the best for finetune",
                                    _add_select_arguments, _run_select)
