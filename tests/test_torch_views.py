"""A PyTorch run shows in the same dashboard and report as a Keras run: the widget streams the
torch probe's rows (its extra channels included) over a recording comm, and the HTML report and
a saved file carry the run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recording_comm import record_comms
from torch_training import model_and_optimizer, tensors

import bertlab
import bertlab.torch
from bertlab.probes.torch.rows import EXTRAS


@pytest.fixture()
def comms(monkeypatch):
    return record_comms(monkeypatch)


def _decode(buffer: bytes, columns: int) -> np.ndarray:
    return np.frombuffer(buffer, dtype=np.float32).reshape(columns, -1).T


def test_torch_run_streams_to_the_dashboard_and_saves(comms, tmp_path):
    model, opt = model_and_optimizer(activation=torch.nn.Softmax(dim=-1))
    loss_fn = torch.nn.CrossEntropyLoss()  # applies softmax again: double-softmax
    watch = bertlab.torch.Watch(model, opt, loss_fn, verbose=False, dashboard=False)
    dash = watch.dashboard
    dash.throttle_s = 0.0
    ids, mask, y = tensors(n=256)
    for _ in range(2):
        model.train()
        for i in range(0, 192, 32):
            opt.zero_grad()
            loss_fn(model(ids[i : i + 32], mask[i : i + 32]), y[i : i + 32]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(ids[192:], mask[192:]), y[192:])
    watch.close()

    ((meta, _),) = dash.comm.custom("meta")
    names = [name for name, _ in meta["meta"]["channels"]]
    assert names == [name for name, _ in watch.run.store.channels]
    assert {"train_mode", "grad_stale", "micro_batches"} <= set(names)
    steps = dash.comm.custom("steps")
    streamed = np.concatenate([_decode(b[0], c["columns"]) for c, b in steps])
    np.testing.assert_allclose(streamed, watch.run.store.recent().rows.astype(np.float32))
    findings = dash.comm.custom("findings")[-1][0]["findings"]
    assert "double-softmax" in {f["code"] for f in findings}
    assert len(dash.comm.custom("epoch")) == 2 and dash.status == "done"

    watch.save(tmp_path / "run.bertlab")
    again = bertlab.load(tmp_path / "run.bertlab")
    assert again.steps == 12 and again.layout.extras == EXTRAS  # the torch probe's, kept
    html = watch.to_html(tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert html is not None and "double-softmax" in text
