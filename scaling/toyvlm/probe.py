"""What V pooled tokens hold, with no decoder: linear probes of the frozen features.

The study's decoders answer left-of/above at chance from one pooled token, at every size.
That can mean the token lost the objects' positions or that the decoders cannot read them.
A probe separates the two: ridge regressions from the V average-pooled tokens (concatenated,
standardised per column, as :class:`scaling.toyvlm.compressors.AvgPool` pools them) to the
scene's labels, fitted on the train split and scored on the test split's own questions:

- relations: per colour, the row and column of its box's top-left cell, fitted on the scenes
  that hold the colour; ``is a left of b ?`` is answered ``yes`` when the predicted column
  of ``a`` is smaller (rows for ``above``), the rule of :func:`scaling.toyvlm.data.questions`;
- reading: per character slot ``k``, the one-hot character; the answer is the largest output.

The ridge penalty is chosen per probe from :data:`PENALTIES` on the last ``n_val`` train
scenes (held out from the fit, as the evaluator holds them out for early stopping)::

    python -m scaling.toyvlm.probe             # the study's encoder, V = 1, 4, 16
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from scaling.errors import ScalingError
from scaling.toyvlm import data
from scaling.toyvlm.compressors import make_compressor
from scaling.toyvlm.encoder import EncoderSettings, Features, feature_cache

PENALTIES = (0.1, 1.0, 10.0, 100.0, 1000.0)


def pooled(features: np.ndarray, visual_tokens: int) -> np.ndarray:
    """The ``avgpool`` compressor's V tokens of each image, concatenated: ``(n, V * D)``."""
    pool = make_compressor("avgpool", dim=features.shape[-1], grid=data.GRID,
                           visual_tokens=visual_tokens, vocab=len(data.VOCAB))
    with torch.no_grad():
        tokens = pool(torch.from_numpy(features.astype(np.float32)))
    return tokens.flatten(1).numpy().astype(np.float64)


def ridge(x: np.ndarray, y: np.ndarray, *, penalty: float) -> np.ndarray:
    """Weights ``W`` (bias last) minimising ``|[x 1] W - y|^2 + penalty |W_x|^2``:
    ``W = ([x 1]^T [x 1] + penalty I')^-1 [x 1]^T y``, the bias unpenalised."""
    x1 = np.c_[x, np.ones(len(x))]
    reg = penalty * np.eye(x1.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(x1.T @ x1 + reg, x1.T @ y)


def _predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w[:-1] + w[-1]


def colour_boxes(labels: np.ndarray) -> np.ndarray:
    """``(n, colours, 2)``: row and column of each colour's top-left cell, NaN if absent."""
    out = np.full((len(labels), len(data.COLOURS), 2), np.nan)
    rows, cols = np.mgrid[0:data.GRID, 0:data.GRID]
    for k in range(len(data.COLOURS)):
        mask = labels[:, 0] == k + 1
        held = mask.any((1, 2))
        out[held, k, 0] = np.where(mask, rows, data.GRID).min((1, 2))[held]
        out[held, k, 1] = np.where(mask, cols, data.GRID).min((1, 2))[held]
    return out


def characters(labels: np.ndarray) -> np.ndarray:
    """``(n, STRING_LEN)``: the index in :data:`scaling.toyvlm.data.CHARS` of each slot."""
    line = labels[:, 2].max(1)  # one text row per scene: its characters
    slots = data.TEXT_COL + data.TEXT_STRIDE * np.arange(data.STRING_LEN)
    return line[:, slots] - 1


def _fit(x, y, held, fit, val, score) -> np.ndarray:
    """Ridge on ``fit`` rows of (x, y) with the penalty whose ``score`` on ``val`` is best,
    refitted on every ``held`` row; returns the weights."""
    best = max(PENALTIES, key=lambda p: score(_predict(x[val], ridge(x[fit], y[fit], penalty=p)),
                                              val))
    return ridge(x[held], y[held], penalty=best)


def relation_accuracy(pred: np.ndarray, split: data.Split) -> dict[str, float]:
    """Accuracy on ``split``'s left/above questions of answering from predicted box corners
    ``pred`` ``(n_images, colours, 2)``."""
    colour = {data.TOKEN[c]: k for k, c in enumerate(data.COLOURS)}
    out = {}
    for kind, axis in (("left", 1), ("above", 0)):
        rows = np.flatnonzero(split.qtype == data.QUESTION_TYPES.index(kind))
        if not len(rows):
            continue
        named = np.array([[colour[t] for t in q if t in colour] for q in split.question[rows]])
        at = pred[split.image_index[rows]]
        a = at[np.arange(len(rows)), named[:, 0], axis]
        b = at[np.arange(len(rows)), named[:, 1], axis]
        answer = np.where(a < b, data.TOKEN["yes"], data.TOKEN["no"])
        out[kind] = float((answer == split.answer[rows]).mean())
    return out


def probe(features: Features, visual_tokens: int, *, n_val: int = 400) -> dict[str, float]:
    """Test accuracy of the relation and reading probes on ``visual_tokens`` pooled tokens."""
    n = len(features.train)
    if not 0 < n_val < n:
        raise ScalingError(f"n_val must be between 1 and {n - 1}, got {n_val}")
    train, test = pooled(features.train, visual_tokens), pooled(features.test, visual_tokens)
    mean, std = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    fit, val = np.arange(n - n_val), np.arange(n - n_val, n)
    train_split, test_split = features.train_split, features.test_split

    boxes = colour_boxes(train_split.labels)
    pred = np.full((len(test), len(data.COLOURS), 2), np.nan)
    for k in range(len(data.COLOURS)):
        held = np.flatnonzero(~np.isnan(boxes[:, k, 0]))
        fit_k, val_k = np.intersect1d(held, fit), np.intersect1d(held, val)
        w = _fit(train, boxes[:, k], held, fit_k, val_k,
                 lambda p, rows, k=k: -np.abs(p - boxes[rows, k]).mean())
        pred[:, k] = _predict(test, w)
    scores = relation_accuracy(pred, test_split)

    chars = characters(train_split.labels)
    onehot = np.eye(len(data.CHARS))[chars].reshape(n, -1)  # (n, STRING_LEN * CHARS)

    def read(p, rows):
        return (p.reshape(len(rows), data.STRING_LEN, -1).argmax(-1) == chars[rows]).mean()

    w = _fit(train, onehot, np.arange(n), fit, val, read)
    guess = _predict(test, w).reshape(len(test), data.STRING_LEN, -1).argmax(-1)
    scores["read"] = float((guess == characters(test_split.labels)).mean())
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scaling.toyvlm.probe",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="1,4,16",
                        help="visual-token counts, comma-separated (squares whose side "
                             "divides 12)")
    args = parser.parse_args(argv)
    try:
        tokens = [int(t) for t in args.tokens.split(",")]
        for v in tokens:
            make_compressor("avgpool", dim=1, grid=data.GRID, visual_tokens=v, vocab=1)
    except ScalingError as exc:  # bad input: one line and exit code 2, as the CLI does
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValueError:
        print(f"error: --tokens must be integers separated by commas, got {args.tokens!r}",
              file=sys.stderr)
        raise SystemExit(2) from None
    features = feature_cache(EncoderSettings())
    print("| V | left | above | read |\n|---:|---:|---:|---:|")
    for v in tokens:
        s = probe(features, v)
        print(f"| {v} | {s['left']:.3f} | {s['above']:.3f} | {s['read']:.3f} |")


if __name__ == "__main__":
    main()
