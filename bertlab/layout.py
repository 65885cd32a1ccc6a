"""The layout of one recorded training step: which channels a row holds, and how wide each is.

Every training step becomes one flat row of numbers in the run store. A *channel* is a named
range of that row: scalars such as ``loss`` have width 1, vectors such as the per-layer gradient
norms (``grad_layer_norm``) or the predicted-class counts (``pred_count``) are wider. The probe
(framework adapter) fills rows in this layout, the rules and the dashboard read them by name; this
module is the one place that defines the names, so all three agree.

The layout is fixed for a run once the probe has seen the model's outputs and its trainable
variables: the number of outputs ``K``, the task (multi-class, binary, multi-label or regression),
the gradient groups (one per layer) and the output-histogram bin edges.

Channels
--------
step, epoch, batch, time
    Global step (0-based), epoch, batch index within the epoch, seconds since training began
    (the time the callback read the step; steps run in one execution share it).
loss, loss_nonfinite, lr, batch_size
    The raw loss of this batch (not Keras's running mean), 1 when it is NaN/inf, the learning rate
    the optimizer used for this step, the number of samples.
grad_norm, grad_zero, grad_missing, grad_nonfinite, grad_layer_norm[L]
    Global gradient L2 norm; count of variables whose gradient is all zeros, missing (None),
    or not finite; L2 norm per gradient group (layer).
out_min, out_max, out_nonfinite, out_rowsum_dev, out_unit_share, prob_max, prob_entropy
    Facts about the raw model output ``y_pred``: its range, non-finite entries, mean
    ``|row sum - 1|`` and share of entries inside [0, 1] (together: "are these already
    probabilities?"), the mean max-probability and mean entropy (nats) of the probabilities *as
    the loss interprets the outputs* (softmax/sigmoid applied when the loss has ``from_logits``).
out_mean[K], out_hist[bins]
    Per-output mean of ``y_pred`` and a fixed-bin histogram of its values (edges in
    ``Layout.hist_edges``; values outside fall into the edge bins).
pred_count[C], label_count[C]
    Predicted vs true class counts of the batch. Multi-class: C = K classes (argmax). Binary:
    C = 2 (negative, positive). Multi-label: C = K labels, counts of rows predicted/labelled
    positive per label. Absent (C = 0) for regression.
label_min, label_max, label_nonint, label_out_of_range, label_onehot_share, label_multihot_share
    Label facts of the batch: range, number of non-integer entries, number of integer labels
    outside [0, K) (sparse labels), share of rows that are exactly one-hot / multi-hot.
tok_min, tok_max, pad_share, len_mean, len_max, full_share, unk_share, input_nonfinite
    Input facts where cheap: token-id range, share of padding positions, mean and max number of
    non-padding tokens per row, share of rows with no padding at all (likely truncated), share of
    real tokens that are the tokenizer's unknown token (when its id is known), number of
    non-finite values in float inputs.
train_mode, grad_stale, micro_batches (optional: ``Layout.extras``; PyTorch probe)
    1 when the model ran the step's forward in training mode (``model.training``), 0 in
    ``eval()`` mode (dropout off); the largest absolute gradient a reference parameter already
    held when the step's first backward pass began (0 or NaN when gradients were zeroed or set
    to None since the last optimizer step, > 0 when they carry over and accumulate); the number
    of backward passes accumulated into this optimizer step (gradient accumulation).
mask_pad_share (optional: ``Layout.extras``)
    Share of the positions holding the pad id (the tokenizer's, else 0) that the attention /
    padding mask marks "attend": a mask that is all ones, or built from the wrong tensor, lets
    the model read padding. NaN when the batch has no mask input or no pad-id position.
update_ratio[L] (optional: ``Layout.extras``)
    Per gradient group (layer): ``||w_after - w_before|| / ||w_before||`` of this optimizer
    step, the real difference of the weights around the optimizer's update (not lr x grad,
    which ignores Adam's scaling and cancels badly in float32 at ratios of 1e-7). NaN for a
    group whose weights are all zero. Healthy training moves weights by roughly 1e-3 per step
    from scratch and 1e-5..1e-3 when fine-tuning. The Keras probe reads every entry of a weight
    of at most ``UPDATE_SAMPLE`` entries and every k-th slice along the first axis (k = ceil(n
    / UPDATE_SAMPLE)) of a larger one, scaling its sums by n / read: an estimate of the same
    ratio that costs two small reads per weight instead of a copy of the model each step
    (:func:`bertlab.reference.update_ratios` with ``sample=True``). The PyTorch probe reads
    every entry.
loss_scale (optional: ``Layout.extras``; mixed precision)
    The loss scale the step's gradients were computed with (a Keras ``LossScaleOptimizer``'s
    dynamic scale, read before the step changes it); gradient norms are always recorded
    unscaled. A scale that halves from one step to the next marks a skipped step.
len_hist[16]
    Token-length distribution of the batch: how many rows have a number of real (non-padding)
    tokens in each of 16 equal bins on [0, L], L the padded sequence length (edges in
    ``Layout.len_edges``; a row of exactly L tokens, i.e. probably truncated, counts in the last
    bin). Recorded when L is known when the step is traced; absent (width 0) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("multiclass", "binary", "multilabel", "regression")

#: Scalar channels, in row order. Vector channels follow them (see ``Layout.channels``).
SCALARS: tuple[str, ...] = (
    "step",
    "epoch",
    "batch",
    "time",
    "loss",
    "loss_nonfinite",
    "lr",
    "batch_size",
    "grad_norm",
    "grad_zero",
    "grad_missing",
    "grad_nonfinite",
    "out_min",
    "out_max",
    "out_nonfinite",
    "out_rowsum_dev",
    "out_unit_share",
    "prob_max",
    "prob_entropy",
    "label_min",
    "label_max",
    "label_nonint",
    "label_out_of_range",
    "label_onehot_share",
    "label_multihot_share",
    "tok_min",
    "tok_max",
    "pad_share",
    "len_mean",
    "len_max",
    "full_share",
    "unk_share",
    "input_nonfinite",
)

#: Optional scalar channels a probe may add after ``SCALARS`` (``Layout.extras``): facts that
#: only some frameworks have (a PyTorch loop chooses train/eval mode and zeroes gradients itself).
EXTRAS: tuple[str, ...] = (
    "train_mode",
    "grad_stale",
    "micro_batches",
    "mask_pad_share",
    "loss_scale",
)
#: Optional vector channels, one value per gradient group, recorded after the vectors when the
#: layout's ``extras`` names them (runs saved before they existed have none).
LAYER_EXTRAS: tuple[str, ...] = ("update_ratio",)
#: Entries of one weight that ``update_ratio`` reads at most (Keras probe; see above): 4096
#: strided entries estimate a weight's ||dw||/||w|| well for the orders of magnitude the rules
#: compare (1e-7 vs 1e-3), at a cost independent of the model's size.
UPDATE_SAMPLE = 4096

#: How the rows of several micro-batches merge into the row of one optimizer step (gradient
#: accumulation): summed counts, extremes, or means weighted by the micro-batch sizes. Channels
#: not named here (gradients, learning rate, bookkeeping) are measured once per optimizer step.
COMBINE: dict[str, str] = {
    **dict.fromkeys(
        (
            "batch_size",
            "out_nonfinite",
            "label_nonint",
            "label_out_of_range",
            "input_nonfinite",
            "out_hist",
            "pred_count",
            "label_count",
            "len_hist",
        ),
        "sum",
    ),
    **dict.fromkeys(("out_min", "label_min", "tok_min"), "min"),
    **dict.fromkeys(("out_max", "label_max", "tok_max", "len_max", "loss_nonfinite"), "max"),
    **dict.fromkeys(
        (
            "loss",
            "out_rowsum_dev",
            "out_unit_share",
            "prob_max",
            "prob_entropy",
            "out_mean",
            "label_onehot_share",
            "label_multihot_share",
            "pad_share",
            "len_mean",
            "full_share",
            "unk_share",
            "mask_pad_share",
        ),
        "mean",
    ),
}

#: Histogram edges used when the loss reads the outputs as probabilities (20 bins on [0, 1]).
PROB_EDGES: tuple[float, ...] = tuple(i / 20 for i in range(21))
#: Histogram edges used when the loss reads the outputs as logits: 40 unit bins on [-20, 20]
#: (a logit of 20 already means p > 0.999999998; larger values land in the last bin).
LOGIT_EDGES: tuple[float, ...] = tuple(float(i) for i in range(-20, 21))
#: Bins of the token-length histogram ``len_hist``.
LEN_BINS = 16


def length_edges(seq_len: int | None) -> tuple[float, ...]:
    """``LEN_BINS`` equal bins on [0, seq_len]; ``()`` when the sequence length is unknown."""
    if not seq_len or seq_len <= 0:
        return ()
    return tuple(seq_len * i / LEN_BINS for i in range(LEN_BINS + 1))


@dataclass(frozen=True)
class Layout:
    """Shape of a run's per-step rows.

    Parameters
    ----------
    task
        One of ``TASKS``; decides what the class channels mean.
    n_outputs
        K, the size of the model output's last axis (1 for a single output unit).
    layers
        Names of the gradient groups (one per layer that owns trainable variables).
    hist_edges
        Bin edges of ``out_hist``.
    prob_mode
        How the loss turns outputs into probabilities: ``"softmax"``, ``"sigmoid"`` or
        ``"identity"`` (the outputs already are probabilities); ``"none"`` for regression.
    len_edges
        Bin edges of ``len_hist`` (``length_edges(seq_len)``); empty when the padded sequence
        length is not known at trace time, and then ``len_hist`` is not recorded.
    extras
        Optional channels: scalars (names from ``EXTRAS``) recorded after ``SCALARS``, and
        per-layer vectors (``LAYER_EXTRAS``) after the other vectors; runs saved before they
        existed have none.
    """

    task: str
    n_outputs: int
    layers: tuple[str, ...] = field(default_factory=tuple)
    hist_edges: tuple[float, ...] = LOGIT_EDGES
    prob_mode: str = "softmax"
    len_edges: tuple[float, ...] = ()
    extras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        unknown = [name for name in self.extras if name not in EXTRAS + LAYER_EXTRAS]
        if unknown:
            raise ValueError(
                f"unknown extra channels {unknown}; expected names from {EXTRAS + LAYER_EXTRAS}"
            )

    @property
    def n_classes(self) -> int:
        """Width of ``pred_count``/``label_count``: classes, or labels for multi-label."""
        if self.task == "regression":
            return 0
        if self.task == "binary":
            return 2
        return self.n_outputs

    def vectors(self) -> list[tuple[str, int]]:
        """Vector channels and their widths (zero-width channels are left out)."""
        out = [
            ("grad_layer_norm", len(self.layers)),
            ("out_mean", self.n_outputs),
            ("out_hist", len(self.hist_edges) - 1),
            ("pred_count", self.n_classes),
            ("label_count", self.n_classes),
            ("len_hist", max(0, len(self.len_edges) - 1)),
        ]
        out += [(name, len(self.layers)) for name in self.extras if name in LAYER_EXTRAS]
        return [(name, width) for name, width in out if width > 0]

    def channels(self) -> list[tuple[str, int]]:
        """All channels of a row, in order, as ``(name, width)``."""
        scalars = SCALARS + tuple(name for name in self.extras if name in EXTRAS)
        return [(name, 1) for name in scalars] + self.vectors()

    def width(self) -> int:
        """Number of values in one row."""
        return sum(width for _, width in self.channels())

    @classmethod
    def for_model(
        cls,
        *,
        loss: str | None,
        from_logits: bool | None,
        output_activation: str | None,
        n_outputs: int,
        layers: tuple[str, ...],
        seq_len: int | None = None,
        extras: tuple[str, ...] = (),
    ) -> Layout:
        """The layout for a model with these facts, K outputs and these gradient groups.

        ``seq_len`` is the padded token sequence length when known at trace time (it adds the
        ``len_hist`` channel).
        """
        task = choose_task(loss, n_outputs)
        mode = choose_prob_mode(task, from_logits, output_activation)
        edges = PROB_EDGES if mode == "identity" else LOGIT_EDGES
        return cls(task, n_outputs, tuple(layers), edges, mode, length_edges(seq_len), extras)

    def labels(self, channel: str) -> list[str]:
        """Human-readable labels of a vector channel's columns (for tables and plots)."""
        if channel == "grad_layer_norm" or channel in LAYER_EXTRAS:
            return list(self.layers)
        if channel in ("out_hist", "len_hist"):
            edges = self.hist_edges if channel == "out_hist" else self.len_edges
            return [f"{edges[i]:g}..{edges[i + 1]:g}" for i in range(len(edges) - 1)]
        if channel in ("pred_count", "label_count"):
            if self.task == "binary":
                return ["0", "1"]
            return [str(i) for i in range(self.n_classes)]
        if channel == "out_mean":
            return [str(i) for i in range(self.n_outputs)]
        return [channel]

    def to_dict(self) -> dict:
        """JSON-able form, stored in a run's metadata."""
        return {
            "task": self.task,
            "n_outputs": self.n_outputs,
            "layers": list(self.layers),
            "hist_edges": list(self.hist_edges),
            "prob_mode": self.prob_mode,
            "len_edges": list(self.len_edges),
            "extras": list(self.extras),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Layout:
        """Inverse of ``to_dict``; raises ``ValueError``/``KeyError`` on malformed input.

        Runs saved before ``len_edges`` existed load with none (no ``len_hist`` channel).
        """
        return cls(
            task=str(data["task"]),
            n_outputs=int(data["n_outputs"]),
            layers=tuple(str(x) for x in data["layers"]),
            hist_edges=tuple(float(x) for x in data["hist_edges"]),
            prob_mode=str(data["prob_mode"]),
            len_edges=tuple(float(x) for x in data.get("len_edges", ())),
            extras=tuple(str(x) for x in data.get("extras", ())),
        )


#: Above this many classes the validation confusion matrix (C^2 numbers per epoch) is skipped.
MAX_CONFUSION_CLASSES = 256


def choose_task(loss: str | None, n_outputs: int) -> str:
    """Decide what the class channels mean from the loss and the output width K.

    The loss names the task (sparse/categorical cross-entropy: one class per row; binary
    cross-entropy: independent labels). With a loss that does not say (MSE, a user function),
    K > 1 outputs are read as class scores (argmax) and a single output as a regression.
    """
    name = (loss or "").lower()
    if "categorical" in name and "hinge" not in name:
        return "multiclass"
    if name.startswith("binary") or name in ("hinge", "squared_hinge"):
        return "binary" if n_outputs == 1 else "multilabel"
    return "multiclass" if n_outputs > 1 else "regression"


def choose_prob_mode(task: str, from_logits: bool | None, output_activation: str | None) -> str:
    """How to read the outputs as probabilities (see ``Layout.prob_mode``).

    Outputs that end in softmax/sigmoid already are probabilities, whatever the loss claims
    (with ``from_logits=True`` Keras on TensorFlow even feeds the loss the pre-activation
    logits, whose softmax/sigmoid is exactly these outputs); thresholding them as logits would
    count every row as positive. Otherwise ``from_logits`` decides; unknown (a user loss) means
    logits.
    """
    if task == "regression":
        return "none"
    if output_activation in ("softmax", "sigmoid"):
        return "identity"
    squash = "softmax" if task == "multiclass" else "sigmoid"
    return "identity" if from_logits is False else squash


def val_channels(layout: Layout) -> list[tuple[str, int]]:
    """Channels of the per-epoch validation accumulator vector.

    ``overlap`` counts the validation rows whose inputs hash like a row trained on before
    (train-val-overlap, measured in-step: see ``datafacts.OVERLAP_SLOTS``), out of ``hashed``
    rows (0 when the inputs are not hashed). ``confusion`` is C x C (row = true class, column =
    predicted) for single-label tasks; multi-label tasks get per-label ``tp``, ``fp``, ``fn``.
    """
    c = layout.n_classes
    out = [("loss_sum", 1), ("batches", 1), ("samples", 1), ("overlap", 1), ("hashed", 1)]
    if c == 0:
        return out
    out += [("pred_count", c), ("label_count", c)]
    if layout.task == "multilabel":
        out += [("tp", c), ("fp", c), ("fn", c)]
    elif c <= MAX_CONFUSION_CLASSES:
        out += [("confusion", c * c)]
    return out
