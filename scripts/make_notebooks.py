"""Write the forum-failure notebooks in ``notebooks/`` (and optionally run them in place).

Each notebook shows one forum failure as the user wrote it, bertlab's findings on that run, and
the fixed run with its better result. Edit the cells here, then regenerate:

    .venv/bin/python scripts/make_notebooks.py            # write the .ipynb files
    .venv/bin/python scripts/make_notebooks.py --execute  # ... and save them with outputs

``tests/test_notebooks.py`` executes every notebook and checks its final ``FINDINGS:`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

SYNTHETIC = (
    "The data here is a **synthetic stand-in built in this notebook** (token ids with a marker "
    "token that carries the label, made with numpy; nothing is downloaded), and a small "
    "embedding model stands in for BERT so the whole notebook runs in well under a minute on "
    "a CPU. The real versions (BBC News, MiniLM) come with the demo issue."
)

SETUP = '''
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import warnings

import keras
import numpy as np

import bertlab

warnings.filterwarnings("ignore", category=UserWarning)  # Keras's own hints, not bertlab's
# 1 = the full notebook; the test suite sets e.g. 0.5 to shorten the *fixed* run (the broken
# run is always the one from the forum, so its findings do not depend on the scale).
STEPS_SCALE = float(os.environ.get("BERTLAB_NOTEBOOK_SCALE", "1"))
VOCAB, SEQ = 300, 16


def scaled(epochs):
    return max(1, round(epochs * STEPS_SCALE))


def token_data(n=256, k=4, seed=0, learnable=True):
    """Token ids (n, SEQ) with padding; token 0 of a row is the marker 1 + class id."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = rng.integers(5, VOCAB, size=(n, SEQ)).astype("int32")
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    if learnable:
        x[:, 0] = 1 + y
    return np.where(mask, x, 0).astype("int32"), y.astype("int64")


def embedding_classifier(k, activation=None, seed=1):
    """Embedding + mean pooling + Dense(k): the smallest text classifier."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(k, activation=activation),
        ]
    )
'''

FINAL = 'print("FINDINGS:", sorted({f.code for f in watch.findings}))'


def notebook(title: str, symptom: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    intro = f"# {title}\n\n> {symptom}\n\n{SYNTHETIC}"
    nb = new_notebook(cells=[new_markdown_cell(intro), new_code_cell(SETUP.strip())])
    for kind, text in cells:
        text = textwrap.dedent(text).strip()
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    nb.cells.append(new_code_cell(FINAL))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# --------------------------------------------------------------------------- 45 classes
FORTY_FIVE = notebook(
    "45 classes: every prediction is the same class",
    'Forum: "I fine-tune BERT on 45 classes with a softmax output and '
    "`SparseCategoricalCrossentropy(from_logits=True)`; the loss stays at 3.8 and the model "
    'predicts the same class for every text."',
    [
        (
            "md",
            "## 1. The failing run, as posted\n\nA `Dense(45, activation='softmax')` head, a "
            "loss that expects logits, and a learning rate far too high (Adam 0.2).",
        ),
        (
            "code",
            """
            x, y = token_data(n=45 * 12, k=45, seed=3)
            x_test, y_test = token_data(n=45 * 8, k=45, seed=4)


            def relu_classifier(activation=None):
                keras.utils.set_random_seed(0)
                return keras.Sequential(
                    [
                        keras.Input((SEQ,), dtype="int32"),
                        keras.layers.Embedding(VOCAB, 32),
                        keras.layers.GlobalAveragePooling1D(),
                        keras.layers.Dense(64, activation="relu"),
                        keras.layers.Dense(45, activation=activation),
                    ]
                )


            model = relu_classifier(activation="softmax")
            model.compile(
                optimizer=keras.optimizers.Adam(0.2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            watch = bertlab.Watch()
            model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[watch])
            pred = model.predict(x_test, verbose=0).argmax(-1)
            broken_acc = float((pred == y_test).mean())
            print(f"last loss {watch.epochs['loss'].iloc[-1]:.2f} (ln 45 = {np.log(45):.2f})")
            print(f"held-out accuracy {broken_acc:.3f}, distinct predicted classes: "
                  f"{len(np.unique(pred))} of 45")
        """,
        ),
        ("md", "## 2. What bertlab says"),
        ("code", "print(watch.report())"),
        (
            "md",
            "## 3. The fix\n\nOutput **logits** (`Dense(45)` with no activation) for a loss "
            "with `from_logits=True`, and use a sane learning rate: Adam 1e-2 suits this small "
            "from-scratch model; a pretrained BERT needs **2e-5 to 5e-5**.",
        ),
        (
            "code",
            """
            fixed = relu_classifier(activation=None)
            fixed.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            fixed_watch = bertlab.Watch()
            fixed.fit(x, y, batch_size=16, epochs=scaled(4), verbose=0, callbacks=[fixed_watch])
            pred = fixed.predict(x_test, verbose=0).argmax(-1)
            print(f"last loss {fixed_watch.epochs['loss'].iloc[-1]:.2f}")
            print(f"held-out accuracy {float((pred == y_test).mean()):.3f} "
                  f"(broken run: {broken_acc:.3f}), distinct predicted classes: "
                  f"{len(np.unique(pred))} of 45")
            print("findings on the fixed run:", sorted({f.code for f in fixed_watch.findings}))
        """,
        ),
    ],
)

# --------------------------------------------------------------------------- Big Five
BIG_FIVE = notebook(
    "Big Five traits: accuracy stuck at 27 %",
    'Forum: "Big-Five personality traits from essays, 5 sigmoid outputs and binary '
    "cross-entropy, `metrics=['acc']`: accuracy is stuck at 27 % whatever I do.\"",
    [
        (
            "md",
            "## 1. The failing run, as posted\n\nMulti-hot targets (each text can have "
            "several traits), sigmoid outputs, binary cross-entropy, and `metrics=['acc']`.",
        ),
        (
            "code",
            '''
            def multilabel_data(n=480, rates=(0.5, 0.45, 0.55, 0.4, 0.5), seed=5, marked=0.3):
                """Multi-hot traits; a trait is visible (marker token) in only 30 % of its rows."""
                rng = np.random.default_rng(seed)
                x, _ = token_data(n=n, k=2, learnable=False)
                y = (rng.random((n, len(rates))) < np.asarray(rates)).astype("float32")
                for j in range(len(rates)):
                    show = (y[:, j] > 0) & (rng.random(n) < marked)
                    x[:, j + 1] = np.where(show, 1 + j, x[:, j + 1])
                return x, y


            x, y = multilabel_data()
            model = embedding_classifier(k=5, activation="sigmoid")
            model.compile(
                optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["acc"]
            )
            watch = bertlab.Watch()
            model.fit(
                x, y, epochs=4, batch_size=32, validation_split=0.2, verbose=0, callbacks=[watch]
            )
            print(watch.epochs[["loss", "acc", "val_loss", "val_acc"]].round(3).to_string())
        ''',
        ),
        ("md", "## 2. What bertlab says"),
        ("code", "print(watch.report())"),
        (
            "md",
            "## 3. The fix\n\nThe training was fine: `'acc'` with this loss resolved to "
            "`CategoricalAccuracy` (does the argmax of 5 sigmoids hit a positive trait?), which is "
            "meaningless for multi-label targets. Measure each trait on its own:"
            " `BinaryAccuracy` and `AUC(multi_label=True)`.",
        ),
        (
            "code",
            """
            fixed = embedding_classifier(k=5, activation="sigmoid")
            fixed.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss="binary_crossentropy",
                metrics=[
                    keras.metrics.BinaryAccuracy(name="binary_accuracy"),
                    keras.metrics.AUC(multi_label=True, name="auc"),
                ],
            )
            fixed_watch = bertlab.Watch()
            fixed.fit(
                x, y, epochs=scaled(4), batch_size=32, validation_split=0.2, verbose=0,
                callbacks=[fixed_watch],
            )
            last = fixed_watch.epochs.iloc[-1]
            print(f"val 'acc' in the broken run: {watch.epochs['val_acc'].iloc[-1]:.3f}")
            print(f"val binary_accuracy {last['val_binary_accuracy']:.3f}, "
                  f"val AUC (per trait, averaged) {last['val_auc']:.3f}")
            print("findings on the fixed run:", sorted({f.code for f in fixed_watch.findings}))
        """,
        ),
    ],
)

# --------------------------------------------------------------------------- TextVectorization
TEXTVEC = notebook(
    "TextVectorization labels: NaN loss and categorical_accuracy 1.0",
    'Forum: "I encode my 5 label strings with a TextVectorization layer and train with '
    "CategoricalCrossentropy; after a few epochs the loss is NaN but categorical_accuracy "
    'says 1.0."',
    [
        (
            "md",
            "## 1. The failing run, as posted\n\nThe label strings go through "
            "`TextVectorization`, which gives `(N, 1)` ids 2..6 (0 is padding, 1 is `[UNK]`); "
            "`CategoricalCrossentropy` then reads those ids as a one-hot row. SGD(1.0) makes the "
            "overflow happen in a few epochs instead of a few hundred.",
        ),
        (
            "code",
            """
            import tensorflow as tf

            x, y_true = token_data(n=256, k=5)
            names = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
            words = names[y_true]
            vectorize = keras.layers.TextVectorization(output_mode="int")
            vectorize.adapt(words)
            ds = tf.data.Dataset.from_tensor_slices((x, words)).batch(16)
            ds = ds.map(lambda a, b: (a, vectorize(b)))
            print("label batch as the model sees it:", next(iter(ds))[1][:4].numpy().ravel())

            model = embedding_classifier(k=5, activation="softmax")
            model.compile(
                optimizer=keras.optimizers.SGD(1.0),
                loss=keras.losses.CategoricalCrossentropy(),
                metrics=["categorical_accuracy"],
            )
            watch = bertlab.Watch()
            model.fit(ds, epochs=4, verbose=0, callbacks=[watch])
            print(watch.epochs[["loss", "categorical_accuracy"]].to_string())
        """,
        ),
        ("md", "## 2. What bertlab says"),
        ("code", "print(watch.report())"),
        (
            "md",
            "## 3. The fix\n\nTurn the label strings into class ids **0..K-1** (one per "
            "row) and use `SparseCategoricalCrossentropy` with an `accuracy` metric. SGD(1.0) "
            "was only there to make the overflow come fast; the fixed run uses Adam 1e-2. (An "
            "accuracy near 1.0 is honest here: the synthetic marker token gives the class away.)",
        ),
        (
            "code",
            """
            classes, y_ids = np.unique(words, return_inverse=True)
            print("classes:", classes.tolist(), "-> ids 0 ..", len(classes) - 1)
            fixed_ds = tf.data.Dataset.from_tensor_slices((x, y_ids)).batch(16)
            fixed = embedding_classifier(k=5, activation="softmax")
            fixed.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
            )
            fixed_watch = bertlab.Watch()
            fixed.fit(fixed_ds, epochs=scaled(6), verbose=0, callbacks=[fixed_watch])
            print(fixed_watch.epochs[["loss", "accuracy"]].round(4).to_string())
            print("findings on the fixed run:", sorted({f.code for f in fixed_watch.findings}))
        """,
        ),
    ],
)

# --------------------------------------------------------------------------- 13 tags
THIRTEEN = notebook(
    "13 imbalanced tags: accuracy stuck at 60 %",
    'Forum: "Multi-label classification with 13 tags, sigmoid + binary cross-entropy: '
    'validation accuracy is stuck at about 60 % and never improves."',
    [
        (
            "md",
            "## 1. The failing run, as posted\n\n13 tags, most of them rare (2-35 % "
            "positive), each only weakly announced by its marker token.",
        ),
        (
            "code",
            """
            def imbalanced_tags(n=768, seed=3):
                rates = np.array(
                    [0.35, 0.2, 0.12, 0.08, 0.06, 0.05, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02]
                )
                rng = np.random.default_rng(seed)
                x, _ = token_data(n=n, k=2, seed=seed, learnable=False)
                y = (rng.random((n, len(rates))) < rates).astype("float32")
                for j in range(len(rates)):  # marker in half the positives, a tenth of the rest
                    put = rng.random(n) < np.where(y[:, j] > 0, 0.5, 0.1)
                    x[np.flatnonzero(put), rng.integers(0, 8, size=n)[put]] = 1 + j
                return x, y


            x, y = imbalanced_tags()
            x_val, y_val = x[int(0.8 * len(x)):], y[int(0.8 * len(y)):]  # validation_split's rows
            model = embedding_classifier(k=13, activation="sigmoid")
            model.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss="binary_crossentropy",
                metrics=["accuracy"],
            )
            watch = bertlab.Watch()
            model.fit(
                x, y, epochs=4, batch_size=32, validation_split=0.2, verbose=0, callbacks=[watch]
            )
            print(watch.epochs[["loss", "accuracy", "val_loss", "val_accuracy"]].round(3))


            def tag_summary(m):
                p = m.predict(x_val, verbose=0)
                hit = (p >= 0.5)
                recall = (hit & (y_val > 0)).sum() / max(1, (y_val > 0).sum())
                auc = keras.metrics.AUC(multi_label=True)
                auc.update_state(y_val, p)
                print(f"tags ever predicted positive on validation: "
                      f"{int(hit.any(axis=0).sum())} of 13; recall {recall:.2f}; "
                      f"AUC (per tag) {float(auc.result()):.3f}")


            tag_summary(model)
        """,
        ),
        ("md", "## 2. What bertlab says"),
        ("code", "print(watch.report())"),
        (
            "md",
            "## 3. The fix\n\nAs bertlab's fix text says: weight the rare positives up "
            "(`BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.9)`; Keras's default "
            "alpha 0.25 weights them *down*) and judge with per-label metrics "
            "(`AUC(multi_label=True)`, `Recall`) instead of the per-entry accuracy, which is high "
            "for a model that answers 'no' to everything.",
        ),
        (
            "code",
            """
            fixed = embedding_classifier(k=13, activation="sigmoid")
            fixed.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.9),
                metrics=[keras.metrics.AUC(multi_label=True, name="auc"), keras.metrics.Recall()],
            )
            fixed_watch = bertlab.Watch()
            fixed.fit(
                x, y, epochs=scaled(8), batch_size=32, validation_split=0.2, verbose=0,
                callbacks=[fixed_watch],
            )
            print("broken run:", end=" ")
            tag_summary(model)
            print("fixed run: ", end=" ")
            tag_summary(fixed)
            print("findings on the fixed run:", sorted({f.code for f in fixed_watch.findings}))
        """,
        ),
    ],
)

# --------------------------------------------------------------------------- overfitting
OVERFIT = notebook(
    "Fine-tuning overfits: training accuracy 0.99, validation stuck",
    'Forum: "My fine-tuned classifier reaches 99 % training accuracy but validation accuracy '
    'stays around 50 % and validation loss keeps going up."',
    [
        (
            "md",
            "## 1. The failing run, as posted\n\nA small dataset (160 rows) where half the "
            "labels are noise, trained for 20 epochs.",
        ),
        (
            "code",
            """
            def noisy_labels(n, noise=0.5, seed=5):
                x, y = token_data(n=n, k=4, seed=seed)
                rng = np.random.default_rng(seed + 7)
                flip = rng.random(n) < noise
                return x, np.where(flip, rng.integers(0, 4, size=n), y)


            x, y = noisy_labels(160)
            x_test, y_test = noisy_labels(400, seed=6)  # fresh rows, same label noise


            def compiled_model():
                model = embedding_classifier(k=4)
                model.compile(
                    optimizer=keras.optimizers.Adam(1e-2),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"],
                )
                return model


            model = compiled_model()
            watch = bertlab.Watch()
            model.fit(
                x, y, epochs=20, batch_size=16, validation_split=0.25, verbose=0,
                callbacks=[watch],
            )
            print(watch.epochs[["loss", "accuracy", "val_loss", "val_accuracy"]].round(3).iloc[::3])
            broken = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
            print(f"held-out: loss {broken['loss']:.3f}, accuracy {broken['accuracy']:.3f}")
        """,
        ),
        ("md", "## 2. What bertlab says"),
        ("code", "print(watch.report())"),
        (
            "md",
            "## 3. The fix\n\nStop at the best validation epoch and keep its weights with "
            "`EarlyStopping(restore_best_weights=True)`. (For a real BERT fine-tune also keep to "
            "2-4 epochs and add weight decay.)",
        ),
        (
            "code",
            """
            fixed = compiled_model()
            stop = keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=2, restore_best_weights=True
            )
            fixed_watch = bertlab.Watch()
            fixed.fit(
                x, y, epochs=scaled(20), batch_size=16, validation_split=0.25, verbose=0,
                callbacks=[stop, fixed_watch],
            )
            print(f"stopped after {len(fixed_watch.epochs)} epochs, "
                  f"kept the weights of epoch {stop.best_epoch + 1}")
            good = fixed.evaluate(x_test, y_test, verbose=0, return_dict=True)
            print(f"held-out: loss {good['loss']:.3f} (broken run: {broken['loss']:.3f}), "
                  f"accuracy {good['accuracy']:.3f} (broken run: {broken['accuracy']:.3f})")
            print("findings on the fixed run:", sorted({f.code for f in fixed_watch.findings}))
        """,
        ),
    ],
)

ALL = {
    "45_classes_one_class.ipynb": FORTY_FIVE,
    "big_five_acc_27.ipynb": BIG_FIVE,
    "textvectorization_labels_nan.ipynb": TEXTVEC,
    "13_tags_stuck_60.ipynb": THIRTEEN,
    "overfitting_finetune.ipynb": OVERFIT,
}


# TensorFlow's start-up chatter on stderr (absl/CUDA probing, tf.function retracing hints):
# not worth keeping in the saved outputs that readers see on GitHub.
NOISE = ("absl::InitializeLog", "cudart_stub", "cuda_platform", "cuInit", "triggered tf.function")


def drop_noise(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o
                for o in cell.outputs
                if not (o.get("name") == "stderr" and any(n in o["text"] for n in NOISE))
            ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run and save with outputs")
    parser.add_argument("names", nargs="*", help="only these notebooks (file names)")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, nb in ALL.items():
        if args.names and name not in args.names:
            continue
        nb = nbformat.from_dict(nb)  # a fresh copy
        if args.execute:
            from nbclient import NotebookClient

            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            os.environ["PYTHONPATH"] = path
            os.environ.pop("BERTLAB_NOTEBOOK_SCALE", None)
            NotebookClient(
                nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
            ).execute()
            drop_noise(nb)
        nbformat.validate(nb)
        nbformat.write(nb, NOTEBOOKS / name)
        print("wrote", NOTEBOOKS / name, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
