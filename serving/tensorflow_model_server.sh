#!/bin/sh
# Serve an `electra-ja export` base path with the real TF Serving, as production does (the local
# `electra-ja serve` speaks the same gRPC and REST APIs for laptops and tests).
#
#   serving/tensorflow_model_server.sh docker BASE_PATH    # tensorflow/serving image, ports 8500 (gRPC), 8501 (REST)
#   serving/tensorflow_model_server.sh binary BASE_PATH    # a tensorflow_model_server on PATH; BASE_PATH may be gs://
#
# Arguments after BASE_PATH go to tensorflow_model_server, e.g. its thread pools, which by default take every core
# (on 2 cores `--tensorflow_intra_op_parallelism=1 --tensorflow_inter_op_parallelism=2` answered faster: README).
# Docker mode reads serving/models.config (model "ner"). No --enable_batching: TF Serving pads a merged batch's
# shorter inputs with each tensor's first element, not zeros, which corrupts variable-length requests (README,
# serving). Set TF_SERVING_IMAGE to pin the image to your tensorflow-serving-api version.
set -eu
MODE=${1:?usage: $0 docker|binary BASE_PATH [SERVER_FLAG ...]}
BASE_PATH=${2:?usage: $0 docker|binary BASE_PATH [SERVER_FLAG ...]}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
case "$MODE" in
  docker)
    exec docker run --rm -p 8500:8500 -p 8501:8501 \
      -v "$(cd "$BASE_PATH" && pwd):/models/ner:ro" -v "$HERE:/config:ro" \
      "${TF_SERVING_IMAGE:-tensorflow/serving:latest}" \
      --model_config_file=/config/models.config "$@" ;;
  binary)
    exec tensorflow_model_server --port=8500 --rest_api_port=8501 \
      --model_name=ner --model_base_path="$BASE_PATH" "$@" ;;
  *)
    echo "usage: $0 docker|binary BASE_PATH [SERVER_FLAG ...]" >&2; exit 2 ;;
esac
