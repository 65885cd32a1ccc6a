"""The PyTorch probe: what it records equals a slow numpy recomputation of the same step, it
never changes training, and it follows the loops people write (accumulation, clipping, hooks
removed on close, a fault in bertlab reported once)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch_training import model_and_optimizer, tensors, tiny_hf_bert, train_loop

import bertlab
import bertlab.torch
from bertlab import reference
from bertlab.probes.torch import quantities

B = 32


def _replay_first_step(model, ids, mask, y, loss_fn):
    """Forward/backward of the first batch on a copy of the initial model (no Watch)."""
    twin = copy.deepcopy(model)
    out = twin(ids[:B], mask[:B])
    loss = loss_fn(out, y[:B])
    loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in twin.named_parameters()}
    return float(loss.detach()), out.detach().numpy(), grads


def test_first_step_matches_numpy_reference():
    ids, mask, y = tensors(n=256)
    ids[:B, 1] = 7  # repeated tokens: the embedding gradient accumulates rows
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    ref_loss, ref_out, ref_grads = _replay_first_step(model, ids, mask, y, loss_fn)
    watch = train_loop(model, opt, loss_fn, (ids, mask, y), epochs=1, val_batches=2)
    row = watch.history.iloc[0]
    layout = watch.run.layout

    expected = reference.step(
        layout, loss=ref_loss, y_pred=ref_out, y=y[:B].numpy(), ids=ids[:B], mask=mask[:B]
    )
    for name, value in expected.items():
        got = row[[c for c in watch.history.columns if c == name or c.startswith(name + "[")]]
        np.testing.assert_allclose(
            np.asarray(got, float), np.ravel(value), rtol=1e-4, atol=1e-6, err_msg=name
        )
    names = list(ref_grads)
    groups = [layout.layers.index(n.rsplit(".", 1)[0]) for n in names]
    grads = reference.gradients([ref_grads[n] for n in names], groups, len(layout.layers))
    assert np.isclose(row["grad_norm"], grads["grad_norm"], rtol=1e-4)
    for i, layer in enumerate(layout.layers):
        assert np.isclose(row[f"grad_layer_norm[{layer}]"], grads["grad_layer_norm"][i], rtol=1e-4)
    assert row["grad_zero"] == 0 and row["grad_missing"] == 0 and row["grad_nonfinite"] == 0
    assert row["lr"] == pytest.approx(1e-2)
    assert row["train_mode"] == 1 and row["grad_stale"] == 0 and row["micro_batches"] == 1
    assert watch.run.meta["model"]["framework"] == "torch"
    assert watch.run.meta["model"]["output_activation"] == "linear"  # an Addmm made the output


def test_same_seed_same_weights_with_and_without_watch():
    weights = []
    for watched in (False, True):
        model, opt = model_and_optimizer(seed=3, dropout=0.1)  # dropout: the RNG is consumed
        torch.manual_seed(11)
        train_loop(model, opt, torch.nn.CrossEntropyLoss(), epochs=2, watch=watched)
        weights.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*weights, strict=True):
        assert torch.equal(a, b)


def test_gradient_accumulation_gives_one_row_per_optimizer_step():
    ids, mask, y = tensors(n=256)
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    k, micro = 4, 8
    with bertlab.torch.Watch(model, opt, loss_fn, verbose=False) as watch:
        for step in range(4):
            for j in range(k):
                s = slice((step * k + j) * micro, (step * k + j + 1) * micro)
                (loss_fn(model(ids[s], mask[s]), y[s]) / k).backward()
            opt.step()
            opt.zero_grad()
    h = watch.history
    assert len(h) == 4
    assert (h["micro_batches"] == k).all() and (h["batch_size"] == k * micro).all()
    assert (h["grad_stale"] == 0).all()  # zeroed after each step: not stale
    first = y[: k * micro].numpy()
    counts = [h.iloc[0][f"label_count[{c}]"] for c in range(4)]
    np.testing.assert_array_equal(counts, np.bincount(first, minlength=4))


def test_gradient_norms_are_read_before_clipping():
    ids, mask, y = tensors(n=128)
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    clipped = []
    with bertlab.torch.Watch(model, opt, loss_fn, verbose=False) as watch:
        for i in range(0, 96, B):
            opt.zero_grad()
            loss_fn(model(ids[i : i + B], mask[i : i + B]), y[i : i + B]).backward()
            clipped.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)))
            opt.step()
    np.testing.assert_allclose(watch.history["grad_norm"], clipped, rtol=1e-4)
    assert (watch.history["grad_norm"] > 1e-2).all()  # far above the clipped 1e-3


def test_validation_epochs_and_hooks_removed_on_close():
    model, opt = model_and_optimizer()
    loss_fn = torch.nn.CrossEntropyLoss()
    watch = train_loop(model, opt, loss_fn, epochs=3)
    epochs = watch.epochs
    assert list(epochs["epoch"]) == [0, 1, 2]
    assert (epochs["val_samples"] == 128).all()
    confusion = epochs["val_confusion"].iloc[-1]
    assert confusion.shape == (4, 4) and confusion.sum() == 128
    assert epochs["val_accuracy"].iloc[-1] > 0.5  # the marker token is learnable
    assert (epochs["val_train_mode"] == 0).all()
    assert not model._forward_hooks and not loss_fn._forward_hooks
    assert not opt._optimizer_step_pre_hooks
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())
    assert watch.findings == [] or all(f.severity == "info" for f in watch.findings)


def test_multilabel_sigmoid_bce_and_pos_weight_facts():
    ids, mask, y = tensors(n=256)
    labels = torch.stack([(y == c) | (y == (c + 1) % 4) for c in range(3)], 1).float()
    model, opt = model_and_optimizer(k=3, activation=torch.nn.Sigmoid())
    loss_fn = torch.nn.BCELoss()
    watch = train_loop(model, opt, loss_fn, (ids, mask, labels), epochs=1)
    layout = watch.run.layout
    assert layout.task == "multilabel" and layout.prob_mode == "identity"
    assert watch.run.meta["output_op"] == "Sigmoid"
    assert watch.run.meta["model"]["output_activation"] == "sigmoid"
    last = watch.epochs.iloc[-1]
    assert len(last["val_f1"]) == 3 and last["val_label_count"].sum() == labels[-128:].sum()


def test_a_fault_in_bertlab_is_reported_once_and_training_goes_on(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(quantities, "output_stats", broken)
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    ids, mask, y = tensors(n=128)
    before = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watch = bertlab.torch.Watch(model, opt, loss_fn, verbose=False)
        for i in range(0, 128, B):
            opt.zero_grad()
            loss_fn(model(ids[i : i + B], mask[i : i + B]), y[i : i + B]).backward()
            opt.step()
        watch.close()
    mine = [w for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    assert len(mine) == 1 and "injected" in str(mine[0].message)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert not model._forward_hooks


def test_hugging_face_model_with_labels_argument():
    model = tiny_hf_bert()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    ids, mask, y = tensors(n=96)
    losses = []
    with bertlab.torch.Watch(model, opt, verbose=False) as watch:
        model.train()
        for i in range(0, 96, B):
            out = model(
                input_ids=ids[i : i + B], attention_mask=mask[i : i + B], labels=y[i : i + B]
            )
            losses.append(out.loss.item())
            out.loss.backward()
            opt.step()
            opt.zero_grad()
    h = watch.history
    np.testing.assert_allclose(h["loss"], losses, rtol=1e-5)
    assert watch.run.meta["model"]["loss"] == "sparse_categorical_crossentropy"
    assert watch.run.layout.n_outputs == 4 and h["pad_share"].notna().all()
    assert "BertModel" in watch.run.meta["model"]["encoders"]


def test_a_failing_step_is_diagnosed_and_the_exception_carries_the_cause():
    """A label >= K makes nn.CrossEntropyLoss raise inside the step: the Watch records the
    batch the loss was called with and attaches the named cause to the exception."""
    ids, mask, y = tensors(n=96)
    y[40] = 4  # the model has 4 outputs: valid labels are 0..3
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    with pytest.raises(IndexError) as info:
        with bertlab.torch.Watch(model, opt, loss_fn, verbose=False) as watch:
            for i in range(0, 96, B):
                opt.zero_grad()
                loss_fn(model(ids[i : i + B], mask[i : i + B]), y[i : i + B]).backward()
                opt.step()
    notes = getattr(info.value, "__notes__", [])
    assert any(n.startswith("bertlab:") and "label-out-of-range" in n for n in notes), notes
    assert watch.run.steps == 2  # the failed step is recorded: its labels are the evidence
    assert watch.history["label_max"].iloc[-1] == 4
    assert "IndexError" in watch.run.meta["error"]
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_labels_beyond_num_labels_raise_inside_a_hugging_face_forward():
    """The model's built-in loss raises inside forward on the very first step (no outputs, no
    layout from a finished step): the labels the forward was called with still name the cause."""
    model = tiny_hf_bert(num_labels=4)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    ids, mask, y = tensors(n=16, k=7)
    y[0] = 6  # 7 classes in the data, 4 labels in the model
    with pytest.raises(IndexError) as info:
        with bertlab.torch.Watch(model, opt, verbose=False) as watch:
            model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
    notes = getattr(info.value, "__notes__", [])
    assert any("label-out-of-range" in n for n in notes), notes
    assert watch.history["batch_size"].iloc[-1] == 16
    assert watch.history["label_max"].iloc[-1] == 6


def test_token_ids_beyond_the_vocabulary_in_a_hugging_face_model():
    model = tiny_hf_bert()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    ids, mask, y = tensors(n=32)
    ids[3, 2] = 30522  # a bert-base-uncased id fed to a 300-token vocabulary
    with pytest.raises(IndexError) as info:
        with bertlab.torch.Watch(model, opt, verbose=False):
            model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
    notes = getattr(info.value, "__notes__", [])
    assert any("token-id-out-of-range" in n for n in notes), notes


def _amp_loop(scaler, watched: bool, steps: int = 12, head_scale: float = 1.0):
    """The AMP recipe (scale, backward, unscale_, clip, step, update) on a float32 model: CPU
    has a GradScaler too, and the scaling arithmetic is the same as on a GPU."""
    ids, mask, y = tensors(n=steps * B)
    model, opt = model_and_optimizer(dropout=0.0, lr=1e-3)
    with torch.no_grad():
        model.head.weight.mul_(head_scale)
    loss_fn = torch.nn.CrossEntropyLoss()
    watch = (
        bertlab.torch.Watch(model, opt, loss_fn, scaler=scaler, verbose=False) if watched else None
    )
    for i in range(0, steps * B, B):
        opt.zero_grad()
        loss = loss_fn(model(ids[i : i + B], mask[i : i + B]), y[i : i + B])
        if scaler is None:
            loss.backward()
            opt.step()
            continue
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(opt)
        scaler.update()
    if watch is not None:
        watch.close()
    return model, watch


def test_a_grad_scaler_is_divided_back_out_and_its_skips_are_recorded():
    _, plain = _amp_loop(None, True)
    model_a, scaled = _amp_loop(torch.amp.GradScaler("cpu"), True)
    model_b, _ = _amp_loop(torch.amp.GradScaler("cpu"), False)
    h, ref = scaled.history, plain.history
    np.testing.assert_allclose(h["grad_norm"], ref["grad_norm"], rtol=1e-5)
    assert list(h["loss_scale"]) == [65536.0] * 12
    assert "loss_scale" not in ref
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)  # never perturb: the same weights with and without Watch
    assert not scaled._instrument.amp.scaler.__dict__.get("update")  # untapped on close
    # Gradients of ~1e30 under a scale of 2**100 overflow float32 on every step: each step is
    # skipped (no optimizer.step() for the hooks to see), yet has its row with its non-finite
    # gradients; the scale halves each time and the rule names the collapse.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    _, skipping = _amp_loop(scaler, True, steps=16, head_scale=1e30)
    h = skipping.history
    assert len(h) == 16 and list(h["loss_scale"]) == [2.0 ** (100 - i) for i in range(16)]
    assert (h["grad_nonfinite"] > 0).all() and h["micro_batches"].eq(1).all()
    assert "loss-scale-collapse" in {f.code for f in skipping.findings}


def test_the_scaler_of_an_accelerate_optimizer_is_found_by_itself():
    """Accelerate wraps the optimizer with the GradScaler (the HF Trainer with fp16=True on a
    GPU): the Watch takes the scaler from the wrapper. CPU has no fp16 Accelerator, so the
    wrapper is built here with CPU's GradScaler, as ``accelerator.prepare`` builds it on a GPU."""
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.state import AcceleratorState

    ids, mask, y = tensors(n=4 * B)
    model, inner = model_and_optimizer(dropout=0.0, lr=1e-3)
    scaler = torch.amp.GradScaler("cpu")
    Accelerator(cpu=True)  # the process state an AcceleratedOptimizer needs
    try:
        opt = AcceleratedOptimizer(inner, device_placement=False, scaler=scaler)
        loss_fn = torch.nn.CrossEntropyLoss()
        with bertlab.torch.Watch(model, opt, loss_fn, verbose=False) as watch:
            for i in range(0, 4 * B, B):
                opt.zero_grad()
                loss = loss_fn(model(ids[i : i + B], mask[i : i + B]), y[i : i + B])
                scaler.scale(loss).backward()
                opt.step()  # scaler.step(inner) and scaler.update()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert list(watch.history["loss_scale"]) == [65536.0] * 4
    assert watch.history["grad_norm"].max() < 100  # unscaled: a float32 loss's gradients
