"""serving's subcommands: `electra-ja serve` (local TF-Serving-compatible server) and `electra-ja predict`."""

from data_prep.console import Command
from data_prep.errors import InputError


def _add_thread_arguments(parser):
    """tensorflow_model_server's two thread flags, with its meaning: 0 lets TensorFlow pick (one per core)."""
    parser.add_argument("--tensorflow-intra-op-parallelism", type=int, default=0, metavar="N",
                        help="threads inside one op (tensorflow_model_server's --tensorflow_intra_op_parallelism); "
                             "1 gave the lowest one-sentence latency on 2 cores (docs/benchmarks.md, latency)")
    parser.add_argument("--tensorflow-inter-op-parallelism", type=int, default=0, metavar="N",
                        help="ops run side by side (tensorflow_model_server's --tensorflow_inter_op_parallelism)")


def _configure_threads(args) -> str:
    """Sets TensorFlow's thread pools before anything starts them; returns them as the start-up line shows them."""
    import tensorflow as tf

    from serving.limits import check_range

    pools = (("--tensorflow-intra-op-parallelism", args.tensorflow_intra_op_parallelism,
              tf.config.threading.set_intra_op_parallelism_threads),
             ("--tensorflow-inter-op-parallelism", args.tensorflow_inter_op_parallelism,
              tf.config.threading.set_inter_op_parallelism_threads))
    for flag, threads, configure in pools:
        check_range(flag, threads, 0)
        if threads:
            try:
                configure(threads)
            except RuntimeError as error:  # TensorFlow ran an op already: only an in-process caller gets here
                raise InputError(f"{flag} {threads}: TensorFlow has already started in this process ({error})")
    return (f"intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
            f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'auto'}")


def _add_serve_arguments(parser):
    parser.add_argument("--model-base-path", required=True, help="export base path; the highest version is served")
    parser.add_argument("--name", default="ner", help="model name in request paths and ModelSpecs")
    parser.add_argument("--grpc-port", type=int, default=8500, help="0 picks a free port (printed at start)")
    parser.add_argument("--rest-port", type=int, default=8501, help="0 disables REST, as in tensorflow_model_server")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes the server)")
    parser.add_argument("--max-batch-size", type=int, default=256, help="largest batch a request may carry")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="how often to look for new versions (tensorflow_model_server's "
                             "--file_system_poll_wait_seconds); 0 looks once, at start")
    _add_thread_arguments(parser)


def _run_serve(args):
    import signal
    import threading

    from serving.limits import PORTS, check_range
    from serving.model_versions import ModelVersions
    from serving.server import ModelServer

    threads = _configure_threads(args)
    check_range("--grpc-port", args.grpc_port, *PORTS)
    check_range("--rest-port", args.rest_port, *PORTS)
    check_range("--max-batch-size", args.max_batch_size, 1)
    if not args.poll_seconds >= 0:
        raise InputError(f"--poll-seconds {args.poll_seconds}: expected 0 or more")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    versions = ModelVersions(args.model_base_path, args.name, args.max_batch_size, args.poll_seconds,
                             report=lambda line: print(f"serve: {line}", flush=True))
    with versions, ModelServer(versions, args.grpc_port, args.rest_port, args.host) as server:
        rest = f", REST http://{args.host}:{server.rest_port}/v1/models/{args.name}" if server.rest_port else ""
        print(f"serve: model {args.name!r} version {versions.latest.version}: gRPC {args.host}:{server.grpc_port}"
              f"{rest}; TensorFlow threads: {threads}", flush=True)
        stop.wait()
    print("serve: stopped", flush=True)


def _add_predict_arguments(parser):
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", metavar="HOST:PORT", help="a TF Serving (or `electra-ja serve`) endpoint")
    where.add_argument("--model-base-path", help="run the exported SavedModel in this process instead")
    parser.add_argument("--protocol", choices=("grpc", "rest", "rest-columnar"), default="grpc")
    parser.add_argument("--name", default="ner", help="model name on the server")
    parser.add_argument("--tokenizer", help="with --server: the export's assets/ dir (vocab, tokenizer config, "
                                            "model_config.json)")
    parser.add_argument("--max-seq-length", type=int, help="window length, at least 3 ([CLS] word [SEP]) and at most "
                                                            "the model's positions; default: model_config.json's")
    parser.add_argument("--batch-size", type=int, default=64, help="most windows per request")
    parser.add_argument("--batch-tokens", type=int, help="most padded positions per request (rows × longest "
                                                          "window); default: serving.client.BATCH_TOKENS, tuned on CPU")
    parser.add_argument("--requests-in-flight", type=int, metavar="N",
                        help="requests sent at once, which the server's cores (this machine's without --server) run "
                             "side by side; default: serving.client.REQUESTS_IN_FLIGHT")
    parser.add_argument("texts", nargs="+", metavar="TEXT",
                        help="texts to tag (or classify); '-' reads one text per line from stdin")
    _add_thread_arguments(parser)


def _run_predict(args):
    import json
    import sys

    from data_prep.errors import InputError
    from export.contract import ASSETS_DIR
    from serving.classifier_client import TextClassifierClient
    from serving.client import BATCH_TOKENS, REQUESTS_IN_FLIGHT, EntityClient, is_classifier
    from serving.versions import find_version

    _configure_threads(args)
    if args.server and not args.tokenizer:
        raise InputError("--tokenizer is required with --server (point it at BASE_PATH/<version>/assets)")
    batch_tokens = BATCH_TOKENS if args.batch_tokens is None else args.batch_tokens
    in_flight = REQUESTS_IN_FLIGHT if args.requests_in_flight is None else args.requests_in_flight
    assets = args.tokenizer if args.server else f"{find_version(args.model_base_path)[1]}/{ASSETS_DIR}"
    kind = TextClassifierClient if is_classifier(assets) else EntityClient
    if args.server:
        client = kind.for_server(args.server, args.protocol, args.name, args.tokenizer, args.max_seq_length,
                                 args.batch_size, batch_tokens, in_flight)
    else:
        client = kind.from_export(args.model_base_path, args.batch_size, batch_tokens, args.max_seq_length,
                                  in_flight)
    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    with client:
        for text, answer in zip(texts, client.answers(texts)):
            print(json.dumps({"text": text, **answer}, ensure_ascii=False), flush=True)


serve_command = Command("serve an export over TF Serving's gRPC and REST APIs (local, TF-Serving-compatible)",
                        _add_serve_arguments, _run_serve)
predict_command = Command("tag texts with entities and their offsets (or classify them), via a server or in-process",
                          _add_predict_arguments, _run_predict)
