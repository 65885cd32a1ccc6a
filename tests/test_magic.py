"""``%load_ext bertlab`` in a real IPython shell: the ``%bertlab`` magic and exception notes."""

from __future__ import annotations

import warnings

import keras
import pytest
from conftest import embedding_classifier, token_data
from recording_comm import record_comms
from training import sparse_ce

import bertlab
from bertlab.views.dashboard import Dashboard


@pytest.fixture()
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bertlab")
    yield ip
    ip.run_line_magic("unload_ext", "bertlab")
    InteractiveShell.clear_instance()


def test_watch_on_gives_every_fit_a_watch_and_off_restores_fit(shell, capsys):
    plain_fit = keras.Model.fit
    shell.run_line_magic("bertlab", "watch on")
    assert "every model.fit now gets a Watch" in capsys.readouterr().out
    x, y, _ = token_data(n=64, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    watch = shell.user_ns["bertlab_watch"]
    assert isinstance(watch, bertlab.Watch) and watch.run.steps == 4
    # A fit that already has a Watch keeps its own.
    own = bertlab.Watch(verbose=False)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[own])
    assert own.run.steps == 4 and shell.user_ns["bertlab_watch"] is watch
    shell.run_line_magic("bertlab", "watch off")
    assert keras.Model.fit is plain_fit


def test_check_prints_preflight_findings(shell, capsys):
    x, y, _ = token_data(n=64, k=4)
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(optimizer="adam", loss=sparse_ce(from_logits=True))
    shell.user_ns.update(model=model, x=x, y=y)
    shell.run_line_magic("bertlab", "check model x y")
    assert "double-softmax" in capsys.readouterr().out
    with pytest.raises(ValueError, match="name a compiled model"):
        shell.run_line_magic("bertlab", "check")


def test_open_reopens_a_saved_run_as_a_dashboard(shell, tmp_path, monkeypatch):
    record_comms(monkeypatch)
    x, y, _ = token_data(n=64, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = bertlab.Watch(verbose=False, dashboard=False)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[watch])
    watch.save(tmp_path / "run.bertlab")
    dash = shell.run_line_magic("bertlab", f"open {tmp_path / 'run.bertlab'}")
    assert isinstance(dash, Dashboard)
    assert dash.status == "done" and dash.snapshot_rows == 4 and dash.meta["n_classes"] == 4


def test_unknown_command_says_what_exists(shell):
    with pytest.raises(ValueError, match="(?s)unknown command 'frobnicate'.*watch on"):
        shell.run_line_magic("bertlab", "frobnicate")


def test_findings_attached_to_a_fit_error_are_shown_after_the_traceback(shell, capsys):
    x, y, _ = token_data(n=64, k=4)
    y = y + 2  # labels 2..5 for 4 outputs: TextVectorization-style ids
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    shell.user_ns.update(model=model, x=x, y=y, bertlab=bertlab)
    result = shell.run_cell(
        "model.fit(x, y, epochs=1, batch_size=16, verbose=0, "
        "callbacks=[bertlab.Watch(verbose=False, dashboard=False)])"
    )
    assert result.error_in_exec is not None
    out = capsys.readouterr().out
    assert "bertlab found the cause of this error" in out
    assert "[label-out-of-range]" in out
    # The traceback itself is still shown first.
    assert out.index("Traceback") < out.index("bertlab found the cause")


def test_watch_on_explains_a_fit_that_fails_before_any_callback(shell):
    """Class names as labels: Keras fails converting the data before any callback runs, so no
    Watch sees a batch (benchmark b03); the wrapped fit attaches the pre-flight check's
    explanation to the exception instead."""
    import numpy as np

    shell.run_line_magic("bertlab", "watch on")
    try:
        x, y, _ = token_data(n=64, k=4)
        names = np.array(["business", "sport", "tech", "politics"])[y]
        model = embedding_classifier(k=4)
        model.compile(optimizer="adam", loss=sparse_ce())
        with pytest.raises(ValueError) as info:
            model.fit(x, names, epochs=1, batch_size=16, verbose=0)
        notes = getattr(info.value, "__notes__", [])
        assert any("label-format-mismatch" in n and "'business'" in n for n in notes), notes
        # The same data through bertlab.check names it before any fit.
        found = {f.code: f for f in bertlab.check(model, x, names)}
        assert found["label-format-mismatch"].severity == "error"
        assert "the labels are text" in found["label-format-mismatch"].evidence
    finally:
        shell.run_line_magic("bertlab", "watch off")
