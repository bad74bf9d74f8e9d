"""Batching by index, one-hot and the preprocessor's saved state."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.data import (
    Preprocessor,
    batch_count,
    iterate_batches,
    load,
    one_hot,
    stratified_split,
)


def test_one_permutation_per_epoch_keeps_last_partial_batch():
    batches = list(iterate_batches(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(0).permutation(10))


def test_restoring_rng_state_reproduces_and_resumes_an_epoch():
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    first = list(iterate_batches(50, 8, rng))
    rng.bit_generator.state = state
    resumed = list(iterate_batches(50, 8, rng, start_batch=3))
    assert all(np.array_equal(a, b) for a, b in zip(first[3:], resumed, strict=True))


def test_no_shuffle_is_in_order_and_draws_nothing():
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert np.concatenate(list(iterate_batches(7, 3, rng, shuffle=False))).tolist() == list(
        range(7)
    )
    assert rng.bit_generator.state == state


@pytest.mark.parametrize(
    "n, size, least, sizes",
    [
        (9, 4, 2, [4, 4]),  # a last batch of 1 is smaller than 2: dropped
        (10, 4, 2, [4, 4, 2]),
        (8, 4, 2, [4, 4]),
        (9, 4, 1, [4, 4, 1]),
        (3, 1, 2, [1, 1, 1]),  # batches smaller than the minimum anyway: nothing to drop
    ],
)
def test_a_last_batch_smaller_than_the_minimum_is_dropped(n, size, least, sizes):
    batches = list(iterate_batches(n, size, np.random.default_rng(0), min_batch=least))
    assert [len(b) for b in batches] == sizes == [size] * (len(sizes) - 1) + sizes[-1:]
    assert batch_count(n, size, least) == len(sizes)
    order = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(np.concatenate(batches), order[: sum(sizes)])
    rng = np.random.default_rng(0)
    resumed = list(iterate_batches(n, size, rng, start_batch=1, min_batch=least))
    assert [len(b) for b in resumed] == sizes[1:]


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(5, 0, np.random.default_rng()))


def test_one_hot():
    out = one_hot(np.array([2, 0]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        one_hot(np.array([3]), 3)


def test_stratified_split_exact_size_and_disjoint():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    keep, take = stratified_split(y, 10, np.random.default_rng(0))
    assert np.bincount(y[take]).tolist() == [5, 3, 2]
    assert len(np.intersect1d(keep, take)) == 0 and len(keep) + len(take) == 100


def test_preprocessor_state_dict_round_trip(tmp_path):
    s = load({"dataset": "digits", "normalize": "standard", "flatten": True}, seed=0)
    np.savez(tmp_path / "p.npz", **s.preprocess.state_dict())
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:
        restored = Preprocessor.from_state_dict(dict(f))
    raw = np.arange(2 * 64, dtype=np.uint8).reshape(2, 8, 8) % 17  # (N, rows, cols) accepted
    np.testing.assert_allclose(restored.transform(raw), s.preprocess.transform(raw))
    assert restored.transform(raw).shape == (2, 64)


def test_constant_feature_does_not_divide_by_zero():
    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    for mode in ("minmax", "standard"):
        out = Preprocessor.fit(X, mode).transform(X)
        assert np.isfinite(out).all() and np.all(out[:, 1] == 0)
