"""data/augment.py: every augmentation on its own (shapes, dtypes, statistics, edge cases),
determinism, vectorization over the batch and the registry meta-test."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnctl.config.components import AUGMENTATION, check_spec, make
from nnctl.core.checks import ArgumentError
from nnctl.data import Preprocessor, augment
from nnctl.data.augment import (
    AUGMENTATIONS,
    Augmenter,
    Flip,
    GaussianNoise,
    RandomCrop,
    RandomErasing,
    RandomRotation,
    black_value,
)
from nnctl.data.warp import rotate

# One setting of each registered augmentation that changes a batch (see the meta-test).
CASES = {
    "random_crop": {"pad": 2},
    "flip": {"horizontal": True, "vertical": True, "p": 0.5},
    "random_erasing": {"p": 1.0, "value": "random"},
    "gaussian_noise": {"std": 0.5},
    "random_rotation": {"degrees": 30},
}


def images(n=16, rows=9, cols=7, channels=2, dtype=np.float32, seed=0):
    """A batch in which every value is distinct, so moved pixels can be traced."""
    X = np.random.default_rng(seed).permutation(n * rows * cols * channels)
    return X.reshape(n, rows, cols, channels).astype(dtype)


def rng(seed=1):
    return np.random.default_rng(seed)


def test_every_registered_augmentation_has_a_case():
    assert set(CASES) == set(AUGMENTATIONS.names())


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_and_dtype_are_kept_and_the_input_is_not_changed(name, dtype):
    X = images(dtype=dtype)
    before = X.copy()
    out = AUGMENTATIONS.get(name)(**CASES[name])(X, rng())
    assert out.shape == X.shape and out.dtype == dtype
    assert np.array_equal(X, before)
    assert not np.array_equal(out, X)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_same_generator_state_gives_the_same_batch(name):
    augmentation = AUGMENTATIONS.get(name)(**CASES[name])
    X = images()
    assert np.array_equal(augmentation(X, rng(7)), augmentation(X, rng(7)))
    assert not np.array_equal(augmentation(X, rng(7)), augmentation(X, rng(8)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_config_round_trips(name):
    errors = []
    _, resolved = check_spec(AUGMENTATION, {"type": name, **CASES[name]}, "data.augment[0]", errors)
    assert errors == []
    assert make(AUGMENTATION, resolved).get_config() == resolved
    assert {k: resolved[k] for k in CASES[name]} == CASES[name]


def count_python_calls(function) -> int:
    """Python and C function calls made while ``function()`` runs."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_python_work_per_example(name):
    """Vectorized: 2 examples and 64 examples take the same number of Python-level calls."""
    augmentation = AUGMENTATIONS.get(name)(**CASES[name])
    small, large = images(n=2), images(n=64)
    counts = [count_python_calls(lambda X=X: augmentation(X, rng())) for X in (small, large)]
    assert counts[0] == counts[1] > 0


# --- flip -----------------------------------------------------------------------------


def test_flip_probability_zero_is_the_identity_and_one_always_flips():
    X = images()
    assert np.array_equal(Flip(p=0.0)(X, rng()), X)
    assert np.array_equal(Flip(p=1.0)(X, rng()), X[:, :, ::-1])
    assert np.array_equal(Flip(horizontal=False, vertical=True, p=1.0)(X, rng()), X[:, ::-1])
    both = Flip(horizontal=True, vertical=True, p=1.0)(X, rng())
    assert np.array_equal(both, X[:, ::-1, ::-1])


def test_flip_flips_about_half_of_the_examples_each_one_whole():
    X = images(n=2000, rows=3, cols=4, channels=1)
    out = Flip(p=0.5)(X, rng())
    flipped = np.all(out == X[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == X, axis=(1, 2, 3))
    assert np.all(flipped ^ kept)
    assert 0.45 < flipped.mean() < 0.55


def test_flip_needs_a_direction():
    with pytest.raises(ArgumentError) as info:
        Flip(horizontal=False, vertical=False)
    assert info.value.argument == "horizontal"


# --- random crop --------------------------------------------------------------------------


def test_crop_is_a_shift_of_the_content_within_pad():
    pad = 2
    X = images(n=200, rows=6, cols=5, channels=1) + 1  # no value is the fill 0
    out = RandomCrop(pad=pad)(X, rng())
    shifts = set()
    for original, cropped in zip(X[..., 0], out[..., 0]):
        dy, dx = _shift(original, cropped)
        assert abs(dy) <= pad and abs(dx) <= pad
        shifts.add((dy, dx))
    assert len(shifts) == (2 * pad + 1) ** 2  # every offset occurs


def _shift(original, cropped):
    """The (rows, cols) by which ``cropped`` moved ``original``; checks the rest is fill."""
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            moved = np.zeros_like(original)
            rows, cols = original.shape
            src = original[max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)]
            moved[
                max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]
            ] = src
            if np.array_equal(moved, cropped):
                return dy, dx
    raise AssertionError("not a shifted copy")


@pytest.mark.parametrize(
    "mode, padded", [("edge", [5, 5, 5, 6, 7, 7, 7]), ("reflect", [7, 6, 5, 6, 7, 6, 5])]
)
def test_crop_padding_modes(mode, padded):
    X = np.array([5.0, 6.0, 7.0], dtype=np.float32).reshape(1, 1, 3, 1)
    crop = RandomCrop(pad=2, padding_mode=mode)
    seen = {tuple(crop(X, rng(seed))[0, 0, :, 0]) for seed in range(60)}
    assert seen == {tuple(padded[i : i + 3]) for i in range(5)}


def test_crop_constant_padding_uses_the_fill():
    X = np.ones((50, 4, 4, 1), dtype=np.float32)
    out = RandomCrop(pad=1, fill=-0.5)(X, rng())
    assert set(np.unique(out)) == {-0.5, 1.0}


# --- random erasing -----------------------------------------------------------------------


def test_erasing_probability_zero_is_the_identity():
    X = images()
    assert np.array_equal(RandomErasing(p=0.0)(X, rng()), X)


def test_erased_rectangles_have_the_area_and_ratio_asked_for():
    erasing = RandomErasing(p=1.0, scale=(0.1, 0.2), ratio=(0.5, 2.0), value=-9.0)
    rows, cols = 40, 50
    X = np.ones((500, rows, cols, 3), dtype=np.float32)
    out = erasing(X, rng())
    erased = out[..., 0] == -9.0  # (batch, rows, cols)
    assert np.array_equal(np.repeat(erased[..., None], 3, axis=3), out == -9.0)  # all channels
    area = erased.sum(axis=(1, 2)) / (rows * cols)
    assert np.all(area > 0)  # p = 1: every example erased
    half_pixel = 2 * (rows + cols) / (rows * cols)  # rounding height and width
    assert np.all(area >= 0.1 - half_pixel) and np.all(area <= 0.2 + half_pixel)
    for mask in erased[:50]:  # one solid rectangle each
        r, c = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask[r[0] : r[-1] + 1, c[0] : c[-1] + 1].all() and mask.sum() == len(r) * len(c)
        assert 0.5 - 0.1 <= len(r) / len(c) <= 2.0 + 0.2


def test_erasing_picks_about_p_and_leaves_an_example_whole_when_nothing_fits():
    X = np.ones((4000, 8, 8, 1), dtype=np.float32)
    erased = (RandomErasing(p=0.3, value=0.0)(X, rng()) == 0).any(axis=(1, 2, 3))
    assert 0.27 < erased.mean() < 0.33
    # a rectangle of all the image never fits (torchvision's rule: height < rows)
    whole = RandomErasing(p=1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert np.array_equal(whole(X[:20], rng()), X[:20])


def test_erasing_with_random_values_writes_standard_normal_noise():
    X = np.full((300, 20, 20, 1), 100.0, dtype=np.float32)
    out = RandomErasing(p=1.0, value="random")(X, rng())
    noise = out[out != 100.0]
    assert noise.size > 1000 and abs(noise.mean()) < 0.1 and abs(noise.std() - 1) < 0.1


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"p": 1.5}, "p"),
        ({"scale": [0.3, 0.1]}, "scale"),
        ({"scale": [0.1, 1.5]}, "scale"),
        ({"ratio": [0, 1]}, "ratio"),
        ({"value": "noise"}, "value"),
        ({"value": True}, "value"),
    ],
)
def test_erasing_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ArgumentError) as info:
        RandomErasing(**kwargs)
    assert info.value.argument == argument


# --- gaussian noise -----------------------------------------------------------------------


def test_noise_has_the_standard_deviation_asked_for():
    X = np.zeros((64, 16, 16, 3), dtype=np.float32)
    out = GaussianNoise(std=0.3)(X, rng())
    assert abs(out.mean()) < 0.01 and abs(out.std() - 0.3) < 0.01


def test_noise_probability_picks_whole_examples():
    X = np.zeros((2000, 2, 2, 1), dtype=np.float32)
    noisy = (GaussianNoise(std=1.0, p=0.25)(X, rng()) != 0).any(axis=(1, 2, 3))
    assert 0.22 < noisy.mean() < 0.28
    assert np.array_equal(GaussianNoise(std=1.0, p=0.0)(X, rng()), X)


# --- random rotation ----------------------------------------------------------------------


def test_rotation_by_a_quarter_turn_is_rot90_and_by_zero_the_identity():
    X = images(n=3, rows=5, cols=5, channels=2, dtype=np.float64)
    quarter = rotate(X, np.full(3, np.pi / 2))
    assert np.allclose(quarter, np.rot90(X, axes=(1, 2)))  # counter-clockwise, as displayed
    assert np.array_equal(rotate(X, np.zeros(3)), X)
    assert np.array_equal(RandomRotation(degrees=45, p=0.0)(X, rng()), X)


def test_rotation_fills_the_corners_and_keeps_the_centre():
    X = np.ones((1, 9, 9, 1), dtype=np.float32)
    out = rotate(X, np.array([np.pi / 4]), fill=-1.0)[0, ..., 0]
    assert out[0, 0] == -1.0 and out[4, 4] == 1.0
    assert np.all((out >= -1.0) & (out <= 1.0))


def test_rotation_angles_are_uniform_within_degrees(monkeypatch):
    drawn = []

    def spy(X, angles, fill=0.0):
        drawn.append(angles)
        return rotate(X, angles, fill)

    monkeypatch.setattr(augment, "rotate", spy)  # the name augment.py calls
    RandomRotation(degrees=20, p=0.75)(np.zeros((4000, 3, 3, 1)), rng())
    degrees = np.degrees(drawn[0])
    turned = degrees[degrees != 0]
    assert 0.72 < len(turned) / len(degrees) < 0.78
    assert turned.min() >= -20 and turned.max() <= 20
    assert np.histogram(turned, bins=4, range=(-20, 20))[0].min() > 0.2 * len(turned)


def test_rotation_rejects_more_than_half_a_turn():
    with pytest.raises(ArgumentError) as info:
        RandomRotation(degrees=200)
    assert (info.value.argument, info.value.message) == ("degrees", "must be at most 180; got 200")


# --- the list and its fill ----------------------------------------------------------------


def test_augmenter_applies_the_list_in_order_on_one_generator():
    X = images()
    steps = [RandomCrop(pad=1), Flip(p=0.5), GaussianNoise(std=0.1)]
    expected, generator = X, rng(3)
    for step in steps:
        expected = step(expected, generator)
    assert np.array_equal(Augmenter(steps)(X, rng(3)), expected)


def test_from_config_passes_the_fill_to_those_that_take_it():
    augmenter = Augmenter.from_config(
        [{"type": "random_crop", "pad": 1}, "flip", {"type": "random_rotation"}], fill=-0.25
    )
    crop, flip, rotation = augmenter.augmentations
    assert crop.fill == rotation.fill == -0.25 and isinstance(flip, Flip)
    flip_config = {"type": "flip", "horizontal": True, "vertical": False, "p": 0.5}
    assert augmenter.get_config()[1] == flip_config


@pytest.mark.parametrize("mode, expected", [("standard", -1.0), ("minmax", 0.0), ("none", 0.0)])
def test_black_is_a_raw_zero_pixel_preprocessed(mode, expected):
    X = np.array([0.0, 0.0, 2.0, 2.0], dtype=np.float32).reshape(1, 2, 2, 1)
    prep = Preprocessor.fit(np.concatenate([X, X]), mode)
    assert black_value(prep) == pytest.approx(expected)
