"""Synthetic scenes, a built-in bitmap font and one-token-answer questions (numpy, seeded).

A scene is a ``96 x 96`` RGB image on a ``12 x 12`` grid of ``8 x 8``-pixel cells. It holds
2-5 coloured shapes (distinct colours; shapes may repeat), each filling a ``2 x 2``-cell box
at a cell-aligned position, and one line of text: :data:`STRING_LEN` characters of a 5x7
bitmap font, one character per cell, every other cell from column :data:`TEXT_COL` (a
random row). Questions come in two families:

- ``reasoning``: existence (``is there a red circle ?``), colour of a unique shape, shape of
  a colour, count of a shape, and relative position of two objects (left of / above, asked
  only of pairs whose boxes do not overlap along that axis, so every answer is defined).
  Coarse information suffices; relations need to locate and compare two objects.
- ``text``: ``what is character k of the text ?``: the detail of one cell. A visual token
  that averages a region of ``s x s`` cells mixes about ``s / 2`` characters of the line, so
  reading needs tokens whatever the decoder.

Every answer is one token from :data:`VOCAB`. Everything is a pure function of a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE = 96
CELL = 8
GRID = IMAGE // CELL  # 12 cells per side
BOX = 2  # a shape spans BOX x BOX cells
STRING_LEN = 5  # characters of the text line, one cell each
TEXT_STRIDE = 2  # cells from one character to the next
TEXT_COL = 1  # column of the first character
TEXT_WIDTH = TEXT_STRIDE * (STRING_LEN - 1) + 1  # cells the line spans
QUESTION_LEN = 8  # questions are left-padded to this many tokens

COLOURS = {
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.85, 0.2),
    "blue": (0.2, 0.35, 1.0),
    "yellow": (0.95, 0.9, 0.1),
    "magenta": (0.9, 0.2, 0.9),
    "cyan": (0.1, 0.9, 0.9),
}
SHAPES = ("circle", "square", "triangle", "cross")

# 5x7 glyphs, one string of 7 rows of 5 columns each ("#" = ink).
FONT = {
    "A": ".###.#...##...#######...##...##...#",
    "B": "####.#...#####.#...##...##...#####.",
    "C": ".#####....#....#....#....#.....####",
    "E": "######....####.#....#....#....#####",
    "F": "######....####.#....#....#....#....",
    "H": "#...##...#######...##...##...##...#",
    "K": "#...##..#.###..#.#..#..#.#...##...#",
    "L": "#....#....#....#....#....#....#####",
    "M": "#...###.###.#.##...##...##...##...#",
    "P": "####.#...##...#####.#....#....#....",
    "R": "####.#...##...#####.#.#..#..#.#...#",
    "T": "#####..#....#....#....#....#....#..",
    "U": "#...##...##...##...##...##...#.###.",
    "X": "#...##...#.#.#...#...#.#.#...##...#",
    "Y": "#...##...#.#.#...#....#....#....#..",
    "Z": "#####....#...#...#...#...#....#####",
}
CHARS = tuple(FONT)

QUESTION_TYPES = ("exist", "colour", "shape", "count", "left", "above", "read")
FAMILY = {"exist": "reasoning", "colour": "reasoning", "shape": "reasoning",
          "count": "reasoning", "left": "reasoning", "above": "reasoning", "read": "text"}
FAMILIES = ("reasoning", "text")

_WORDS = ("<pad>", "?", "is", "there", "a", "what", "colour", "shape", "the", "one", "how",
          "many", "are", "left", "of", "above", "character", "text", "yes", "no")
VOCAB: tuple[str, ...] = (
    _WORDS + tuple(COLOURS) + SHAPES + tuple(f"#{k}" for k in range(1, STRING_LEN + 1))
    + tuple(str(n) for n in range(6)) + tuple(f"'{c}'" for c in CHARS)
)
TOKEN = {w: i for i, w in enumerate(VOCAB)}
PAD = TOKEN["<pad>"]


def _glyph(char: str) -> np.ndarray:
    rows = FONT[char]
    assert len(rows) == 35, char
    return np.array([c == "#" for c in rows], dtype=bool).reshape(7, 5)


def _shape_mask(shape: str) -> np.ndarray:
    n = BOX * CELL
    y, x = np.mgrid[0:n, 0:n] + 0.5
    c = n / 2
    if shape == "circle":
        return (x - c) ** 2 + (y - c) ** 2 <= (0.42 * n) ** 2
    if shape == "square":
        return (np.abs(x - c) <= 0.36 * n) & (np.abs(y - c) <= 0.36 * n)
    if shape == "triangle":
        top, bottom = 0.1 * n, 0.9 * n
        half = (y - top) / (bottom - top) * 0.42 * n
        return (y >= top) & (y <= bottom) & (np.abs(x - c) <= half)
    if shape == "cross":
        return ((np.abs(x - c) <= 0.13 * n) | (np.abs(y - c) <= 0.13 * n)) & (
            np.maximum(np.abs(x - c), np.abs(y - c)) <= 0.44 * n)
    raise ValueError(shape)


_SHAPE_MASKS = {s: _shape_mask(s) for s in SHAPES}


def _char_mask(char: str) -> np.ndarray:
    """The 5x7 glyph in one 8x8 cell."""
    m = np.zeros((CELL, CELL), bool)
    m[0:7, 1:6] = _glyph(char)
    return m


_CHAR_MASKS = {c: _char_mask(c) for c in CHARS}


@dataclass(frozen=True)
class Scene:
    """One scene's objects: shapes ``(colour, shape, row, col)`` and the string."""

    shapes: tuple[tuple[str, str, int, int], ...]
    text: str
    text_row: int
    text_col: int


def sample_scene(rng: np.random.Generator) -> Scene:
    """2-5 shapes of distinct colours and one line of text in a random row, no overlaps."""
    occupied = np.zeros((GRID, GRID), bool)
    text_row, text_col = int(rng.integers(0, GRID)), TEXT_COL
    occupied[text_row, text_col:text_col + TEXT_WIDTH] = True

    def place(h: int, w: int) -> tuple[int, int]:
        while True:
            r, c = int(rng.integers(0, GRID - h + 1)), int(rng.integers(0, GRID - w + 1))
            if not occupied[r:r + h, c:c + w].any():
                occupied[r:r + h, c:c + w] = True
                return r, c

    text = "".join(rng.choice(CHARS, size=STRING_LEN))
    n = int(rng.integers(2, 6))
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    shapes = []
    for colour in colours:
        r, c = place(BOX, BOX)
        shapes.append((str(colour), str(rng.choice(SHAPES)), r, c))
    return Scene(tuple(shapes), text, text_row, text_col)


def render(scene: Scene, rng: np.random.Generator, *, noise: float = 0.05):
    """The image ``(3, 96, 96)`` float32 and dense per-cell labels ``(4, 12, 12)`` int64.

    Label planes: colour (0 none, 1..6), shape (0 none, 1..4), character (0 none, 1..16),
    part (0 none, 1..4: which cell of its 2x2 box, 1 for a character) -- what the encoder
    is pretrained on.
    """
    img = np.zeros((IMAGE, IMAGE, 3), np.float32)
    labels = np.zeros((4, GRID, GRID), np.int64)
    part = np.arange(1, 5).reshape(2, 2)
    colour_ids = {c: i + 1 for i, c in enumerate(COLOURS)}
    for colour, shape, r, c in scene.shapes:
        y, x = r * CELL, c * CELL
        box = img[y:y + BOX * CELL, x:x + BOX * CELL]
        box[_SHAPE_MASKS[shape]] = COLOURS[colour]
        labels[0, r:r + BOX, c:c + BOX] = colour_ids[colour]
        labels[1, r:r + BOX, c:c + BOX] = SHAPES.index(shape) + 1
        labels[3, r:r + BOX, c:c + BOX] = part
    grey = float(rng.uniform(0.75, 1.0))
    for k, char in enumerate(scene.text):
        r, c = scene.text_row, scene.text_col + TEXT_STRIDE * k
        y, x = r * CELL, c * CELL
        img[y:y + CELL, x:x + CELL][_CHAR_MASKS[char]] = grey
        labels[2, r, c] = CHARS.index(char) + 1
        labels[3, r, c] = 1
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).transpose(2, 0, 1).copy(), labels


def _encode(words: list[str]) -> list[int]:
    ids = [TOKEN[w] for w in words]
    assert len(ids) <= QUESTION_LEN, words
    return [PAD] * (QUESTION_LEN - len(ids)) + ids


def questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, list[int], int]]:
    """One question of each reasoning type (where valid) and one per text character.

    Returns ``(type, token ids (QUESTION_LEN,), answer token id)``; yes/no questions are
    balanced by construction (a true or a false statement with probability 1/2 each).
    """
    out: list[tuple[str, list[int], int]] = []
    shapes = scene.shapes
    present = {(c, s) for c, s, _, _ in shapes}

    def add(kind: str, words: list[str], answer: str) -> None:
        out.append((kind, _encode(words), TOKEN[answer]))

    # existence: a present pair or an absent one
    if rng.random() < 0.5:
        c, s = shapes[int(rng.integers(len(shapes)))][:2]
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        c, s = absent[int(rng.integers(len(absent)))]
    add("exist", ["is", "there", "a", c, s, "?"], "yes" if (c, s) in present else "no")
    # colour of a shape that occurs once
    counts = {s: sum(1 for _, t, _, _ in shapes if t == s) for s in SHAPES}
    unique = [o for o in shapes if counts[o[1]] == 1]
    if unique:
        c, s = unique[int(rng.integers(len(unique)))][:2]
        add("colour", ["what", "colour", "is", "the", s, "?"], c)
    # shape of a colour (colours are distinct)
    c, s = shapes[int(rng.integers(len(shapes)))][:2]
    add("shape", ["what", "shape", "is", "the", c, "one", "?"], s)
    # count of a shape
    s = SHAPES[int(rng.integers(len(SHAPES)))]
    add("count", ["how", "many", s, "are", "there", "?"], str(counts[s]))
    # relations between two objects whose boxes do not overlap along the axis
    for kind, axis, words in (("left", 3, ["left", "of"]), ("above", 2, ["above"])):
        pairs = [(a, b) for a in shapes for b in shapes if abs(a[axis] - b[axis]) >= BOX]
        if pairs:
            a, b = pairs[int(rng.integers(len(pairs)))]
            add(kind, ["is", a[0], *words, b[0], "?"], "yes" if a[axis] < b[axis] else "no")
    # reading: every character of the string
    for k, char in enumerate(scene.text, start=1):
        add("read", ["what", "is", "character", f"#{k}", "of", "the", "text", "?"], f"'{char}'")
    return out


@dataclass(frozen=True)
class Split:
    """Images, dense labels and their questions (``image_index`` links each question)."""

    images: np.ndarray  # (n_images, 3, 96, 96) float32
    labels: np.ndarray  # (n_images, 4, 12, 12) int64
    image_index: np.ndarray  # (n_questions,) int64
    question: np.ndarray  # (n_questions, QUESTION_LEN) int64
    answer: np.ndarray  # (n_questions,) int64
    qtype: np.ndarray  # (n_questions,) int64 index into QUESTION_TYPES


def make_split(n_images: int, seed: int) -> Split:
    """``n_images`` scenes with all their questions, a pure function of ``seed``."""
    rng = np.random.default_rng(seed)
    images = np.empty((n_images, 3, IMAGE, IMAGE), np.float32)
    labels = np.empty((n_images, 4, GRID, GRID), np.int64)
    idx, qs, ans, types = [], [], [], []
    for i in range(n_images):
        scene = sample_scene(rng)
        images[i], labels[i] = render(scene, rng)
        for kind, q, a in questions(scene, rng):
            idx.append(i)
            qs.append(q)
            ans.append(a)
            types.append(QUESTION_TYPES.index(kind))
    return Split(images, labels, np.array(idx, np.int64), np.array(qs, np.int64),
                 np.array(ans, np.int64), np.array(types, np.int64))


def questions_on(split: Split, images: np.ndarray | None = None,
                 family: str | None = None) -> Split:
    """The questions of ``split`` asked about the images whose index is in ``images`` (all
    when None) and of question family ``family`` (all when None); the image arrays and
    indices are kept as they are."""
    keep = np.ones(len(split.answer), bool) if images is None else \
        np.isin(split.image_index, images)
    if family is not None:
        types = [i for i, t in enumerate(QUESTION_TYPES) if FAMILY[t] == family]
        keep &= np.isin(split.qtype, types)
    return Split(split.images, split.labels, split.image_index[keep], split.question[keep],
                 split.answer[keep], split.qtype[keep])


def prior_accuracy(train: Split, test: Split) -> dict[str, float]:
    """Chance per family: accuracy of answering each question type's most common train
    answer (what a model that ignores the image can reach)."""
    correct = np.zeros(len(test.answer), bool)
    for t in range(len(QUESTION_TYPES)):
        tr, te = train.qtype == t, test.qtype == t
        if tr.any() and te.any():
            majority = np.bincount(train.answer[tr]).argmax()
            correct[te] = test.answer[te] == majority
    fam = np.array([FAMILY[QUESTION_TYPES[t]] for t in test.qtype])
    return {f: float(correct[fam == f].mean()) for f in FAMILIES}
