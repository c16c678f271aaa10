"""export's subcommand: `electra-ja export`."""

from data_prep.console import Command
from data_prep.errors import InputError


def _add_arguments(parser):
    parser.add_argument("--model", required=True, help="fine-tuned dir (finetune --out)")
    parser.add_argument("--export-dir", required=True, metavar="BASE_PATH",
                        help="TF Serving base path; the model goes to BASE_PATH/<version>/")
    parser.add_argument("--version", type=int, help="default: one more than the highest version already there")
    parser.add_argument("--keep-variables", action="store_true",
                        help="keep the weights as variables instead of freezing them into the graph (slower to serve; "
                             "for a model whose graph would pass protobuf's 2 GB)")
    parser.add_argument("--product-blocks", type=int, metavar="N",
                        help="frozen weights only: compute each transformer layer's weight products as N column "
                             "blocks that inter-op threads run side by side (default 2; 1 keeps them whole)")


def _run(args):
    from export.saved_model import PRODUCT_BLOCKS, export_model

    if args.keep_variables and args.product_blocks is not None:
        raise InputError("--product-blocks: splits frozen weights; with --keep-variables there are none to split")
    blocks = PRODUCT_BLOCKS if args.product_blocks is None else args.product_blocks
    path = export_model(args.model, args.export_dir, args.version, freeze=not args.keep_variables,
                        product_blocks=blocks)
    weights = "variables" if args.keep_variables else f"frozen into the graph, large products in {blocks} blocks"
    print(f"export: SavedModel at {path}, weights {weights} (signatures serving_default and labels; assets: vocab, "
          f"tokenizer config, labels.json, model_config.json)")


export_command = Command("export a fine-tuned dir as a TF Serving SavedModel (BASE_PATH/<version>/)", _add_arguments,
                         _run)


def _add_hf_arguments(parser):
    parser.add_argument("--model", required=True, help="pretrain --model-dir or fine-tuned dir (finetune --out)")
    parser.add_argument("--out", required=True, help="new directory (local or gs://): a pretrain dir gives "
                                                     "OUT/discriminator and OUT/generator, a fine-tuned dir OUT itself")


def _run_hf(args):
    from export.hf_export import export_hf

    for path in export_hf(args.model, args.out):
        print(f"export-hf: {path} (config.json, model.safetensors, BertJapaneseTokenizer files, README.md)")


export_hf_command = Command("export a pretrain or fine-tuned dir as transformers model dirs (safetensors)",
                            _add_hf_arguments, _run_hf)
