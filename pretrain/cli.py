"""pretrain's subcommand (`electra-ja pretrain`); TensorFlow is imported only when it runs."""

from data_prep.cli import add_config_arguments, load_config_with_flags
from data_prep.console import Command


def add_strategy_arguments(parser):
    """The one flag pair that picks where training runs (pretrain/strategy.py), shared by pretrain and finetune."""
    parser.add_argument("--strategy", choices=("cpu", "mirrored", "tpu"), default="cpu")
    parser.add_argument("--tpu", help="TPU name, grpc:// address, or 'local' on a TPU VM (implies --strategy tpu)")


def _add_arguments(parser):
    parser.add_argument("--data", required=True, help="pretraining-data output directory (local or gs://)")
    parser.add_argument("--model-dir", required=True, help="checkpoints, TensorBoard events, model_config.json")
    add_strategy_arguments(parser)
    parser.add_argument("--num-train-steps", type=int)
    parser.add_argument("--tokenizer", help="default: the copy pretraining-data keeps in --data/tokenizer")
    parser.add_argument("--init-checkpoint", metavar="HF_DIR",
                        help="start a fresh run from transformers ELECTRA models: HF_DIR/discriminator and "
                             "HF_DIR/generator (export-hf's layout), or the discriminator dir with --init-generator; "
                             "sizes come from their config.json")
    parser.add_argument("--init-generator", metavar="HF_DIR", help="the generator (ElectraForMaskedLM) dir")
    add_config_arguments(parser)


def _run(args):
    from pretrain.trainer import train

    config = load_config_with_flags(args, "pretrain", {"num_train_steps": "num_train_steps"})
    if args.init_generator and not args.init_checkpoint:
        from data_prep.errors import InputError

        raise InputError("--init-generator: needs --init-checkpoint (the discriminator)")
    metrics = train(config, args.data, args.model_dir, args.strategy, args.tpu, args.tokenizer, args.init_checkpoint,
                    args.init_generator)
    print(f"pretrain: step {config.pretrain.num_train_steps} reached; loss {metrics.get('loss', float('nan')):.4f}, "
          f"discriminator accuracy {metrics.get('rtd_accuracy', float('nan')):.3f}; checkpoints and "
          f"encoder/ under {args.model_dir}")


pretrain_command = Command("pretrain ELECTRA (generator + discriminator) on pretraining TFRecords", _add_arguments, _run)
