"""Honest stand-ins, built from BBC News, for forum datasets that no registry package holds.

The forum failures the notebooks reproduce came with data that cannot be had offline (45
procurement categories, Big-Five personality essays, 13 live-commerce tags). Each function
here derives labels of the same *shape* from the BBC articles, deterministically and only from
their own words, so a model can learn them from the text it reads:

- ``subtopics``: 45 classes (9 per topic), balanced: the articles of each topic split into a
  3 x 3 grid of their position along the topic's two main vocabulary directions;
- ``themes``: 5 overlapping 0/1 labels per article, each true for about half the articles,
  like the Big-Five traits (theme keywords counted over the whole article);
- ``tags``: 13 overlapping 0/1 labels from 35 % down to 2 % positive (imbalanced tags).

The model reads the headline and lead paragraph (``bbc.lead``); theme and tag labels count
keywords in the whole article, so they are only partly visible in the lead, as labels usually
are.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

import numpy as np

from bertlab.demo import bbc

_WORD = re.compile(r"[a-z£$]+")

#: Five themes (Big-Five stand-in): each label = "mentions this theme more than the median".
THEMES: dict[str, tuple[str, ...]] = {
    "money": ("£", "$", "bn", "profit", "profits", "price", "prices", "market", "shares", "sales"),
    "politics": ("government", "minister", "mp", "mps", "labour", "tory", "party", "election"),
    "competition": ("win", "won", "victory", "champion", "cup", "final", "award", "awards"),
    "technology": ("technology", "computer", "software", "internet", "digital", "online", "mobile"),
    "world": ("us", "europe", "european", "china", "world", "international", "global", "india"),
}

#: Thirteen tags and their target positive rates (imbalanced, like the forum's tags).
TAGS: dict[str, tuple[tuple[str, ...], float]] = {
    "business": (("company", "firm", "firms", "profit", "profits", "shares", "market"), 0.35),
    "uk-politics": (("labour", "tory", "tories", "blair", "brown", "howard", "mps"), 0.20),
    "football": (("football", "league", "chelsea", "arsenal", "united", "goal"), 0.12),
    "film": (("film", "films", "movie", "oscar", "actor", "actress"), 0.08),
    "music": (("music", "band", "album", "singer", "chart", "song"), 0.06),
    "mobile": (("mobile", "phone", "phones", "handset", "handsets"), 0.05),
    "tax": (("tax", "taxes", "vat", "budget"), 0.04),
    "courts": (("court", "judge", "trial", "lawyers", "legal"), 0.04),
    "games": (("games", "gaming", "console", "playstation", "xbox", "nintendo"), 0.03),
    "energy": (("oil", "gas", "energy", "fuel", "opec"), 0.03),
    "tennis": (("tennis", "wimbledon", "federer", "henman", "seed"), 0.02),
    "china": (("china", "chinese", "beijing"), 0.02),
    "security": (("virus", "hackers", "spam", "security", "phishing"), 0.02),
}


def _words(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


@functools.lru_cache(maxsize=2)
def _all_words(texts: tuple[str, ...]) -> tuple[Counter, ...]:
    return tuple(_words(t) for t in texts)


def _keyword_counts(texts: tuple[str, ...], keywords: tuple[str, ...]) -> np.ndarray:
    return np.array([sum(c[w] for w in keywords) for c in _all_words(texts)], float)


def subtopics(corpus: bbc.Corpus, per_side: int = 3) -> tuple[np.ndarray, list[str]]:
    """45 balanced classes: each topic's articles on a ``per_side`` x ``per_side`` grid.

    Within a topic, the TF-IDF vectors of the articles' leads (words seen in at least 3 of
    them) are projected on their first two principal directions: the articles are cut into
    ``per_side`` equal parts along the first, and each part into ``per_side`` equal parts along
    the second, giving 9 cells of (nearly) equal size. Returns (labels, names).
    """
    leads = [bbc.lead(t) for t in corpus.texts]
    labels = np.zeros(len(corpus), np.int64)
    names: list[str] = []
    for topic_id, topic in enumerate(corpus.topics):
        rows = np.flatnonzero(corpus.labels == topic_id)
        counts = [_words(leads[i]) for i in rows]
        df = Counter(w for c in counts for w in c)
        vocab = sorted(w for w, n in df.items() if n >= 3)
        index = {w: j for j, w in enumerate(vocab)}
        tf = np.zeros((len(rows), len(vocab)))
        for r, c in enumerate(counts):
            for w, n in c.items():
                if w in index:
                    tf[r, index[w]] = n
        idf = np.log(len(rows) / np.array([df[w] for w in vocab], float))
        x = tf * idf
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
        x -= x.mean(0)
        u, _, _ = np.linalg.svd(x, full_matrices=False)
        first = np.argsort(u[:, 0], kind="stable")
        cell = np.zeros(len(rows), np.int64)
        for i, part in enumerate(np.array_split(first, per_side)):
            second = part[np.argsort(u[part, 1], kind="stable")]
            for j, sub in enumerate(np.array_split(second, per_side)):
                cell[sub] = i * per_side + j
        labels[rows] = topic_id * per_side**2 + cell
        names += [f"{topic}-{i}" for i in range(per_side**2)]
    return labels, names


def themes(corpus: bbc.Corpus) -> tuple[np.ndarray, list[str]]:
    """Five 0/1 labels per article: the theme's keywords occur more often than in the median
    article. Returns (labels (N, 5) float32, names)."""
    cols = []
    for keywords in THEMES.values():
        counts = _keyword_counts(corpus.texts, keywords)
        cols.append(counts > np.median(counts))
    return np.stack(cols, 1).astype("float32"), list(THEMES)


def tags(corpus: bbc.Corpus) -> tuple[np.ndarray, list[str]]:
    """Thirteen 0/1 tags: an article gets a tag when it uses the tag's keywords at least as
    often as the top ``rate`` share of articles (ties included, so rates are approximate).
    Returns (labels (N, 13) float32, names)."""
    cols = []
    for keywords, rate in TAGS.values():
        counts = _keyword_counts(corpus.texts, keywords)
        threshold = max(1.0, float(np.quantile(counts, 1.0 - rate)))
        cols.append(counts >= threshold)
    return np.stack(cols, 1).astype("float32"), list(TAGS)
