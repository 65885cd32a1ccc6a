#!/usr/bin/env bash
# The Watch's cost on a GPU, ready to run on a machine that has one (not needed to pass here).
#
#   bash benchmarks/gpu.sh [rounds]      (from the repository root, after ./dev.sh test's setup
#                                         or with bertlab[keras,jax] and a GPU build of TF/JAX)
#
# Prints, per backend (TensorFlow, JAX) and model (the pretrained all-MiniLM-L6-v2 and a
# BERT-base-sized random encoder), batch 32 and sequence 128, the same table as
# benchmarks/overhead.py: the median step time of plain fit, of an A/A control (a second plain
# model) and of fit + bertlab.Watch, their ratios and the per-round spread; the targets are
# <= 1.03x (issue 13). On a GPU every small op is a kernel launch: on JAX the row is computed
# inside the jitted step (fused by XLA); on TensorFlow its ops run in Keras's graph (an XLA
# cluster measured no faster on CPU, and is not used); the row is read back only a few times a
# second (no per-step host sync).
# JSON results go to out/gpu-<backend>-<model>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROUNDS=${1:-5}
mkdir -p out
"$PY" -c "import tensorflow as tf; print('TensorFlow GPUs:', tf.config.list_physical_devices('GPU'))"
for backend in tensorflow jax; do
  if [ "$backend" = jax ]; then
    "$PY" -c "import jax; print('JAX devices:', jax.devices())" || { echo "no jax: skipped"; continue; }
  fi
  for model in minilm bertbase; do
    KERAS_BACKEND=$backend "$PY" benchmarks/overhead.py --model "$model" --batch 32 --seq 128 \
      --control --rounds "$ROUNDS" --backend "$backend" --json "out/gpu-$backend-$model.json"
  done
done
# The ops the Watch adds to the traced TensorFlow step (on a GPU, each one a kernel launch).
KERAS_BACKEND=tensorflow "$PY" benchmarks/opcount.py --model bertbase
