"""Optimizers: hand-worked golden steps, reference loops, clipping, state, config, errors."""

from __future__ import annotations

import inspect
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnctl.core.optimizers import COMMON, OPTIMIZERS, REQUIRED, SGD, Adam, AdamW, grad_norm

P0 = [1.0, -2.0]
G0 = [0.5, -1.5]

# (id, optimizer, kwargs, param, grad, expected param after one step), worked out by hand.
GOLDEN = [
    # p - lr g = [1 - 0.05, -2 + 0.15]
    ("sgd", "sgd", {"lr": 0.1}, P0, G0, [0.95, -1.85]),
    # g + wd p = [0.6, -1.7]; p - 0.5 * that
    ("sgd-l2", "sgd", {"lr": 0.5, "weight_decay": 0.1}, P0, G0, [0.7, -1.15]),
    # first step: b = g
    ("sgd-momentum", "sgd", {"lr": 0.1, "momentum": 0.9}, P0, G0, [0.95, -1.85]),
    # first step: g + mu b = 1.5 g = [0.75, -2.25]
    ("sgd-nesterov", "sgd", {"lr": 0.1, "momentum": 0.5, "nesterov": True}, P0, G0,
     [0.925, -1.775]),
    # |g| = 5 is clipped to 1: g = [0.6, -0.8]
    ("sgd-clip", "sgd", {"lr": 1.0, "clip_norm": 1.0}, P0, [3.0, -4.0], [0.4, -1.2]),
    # m_hat = g, v_hat = g^2: step = lr g / (|g| + eps) = 0.1 * [0.5 / 1, -1.5 / 2]
    ("adam", "adam", {"lr": 0.1, "eps": 0.5}, P0, G0, [0.95, -1.925]),
    # g + wd p = [1.5, -3.5]; 0.1 * [1.5 / 2, -3.5 / 4] = [0.075, -0.0875]
    ("adam-l2", "adam", {"lr": 0.1, "eps": 0.5, "weight_decay": 1.0}, P0, G0, [0.925, -1.9125]),
    # p (1 - 0.1 * 0.5) = [0.95, -1.9]; then the Adam step [0.05, -0.075]
    ("adamw", "adamw", {"lr": 0.1, "eps": 0.5, "weight_decay": 0.5}, P0, G0, [0.9, -1.825]),
    # v = 0.25 g^2 = [1/16, 9/16]; sqrt(v) + eps = [0.5, 1]; 0.1 * g / that = [0.1, -0.15]
    ("rmsprop", "rmsprop", {"lr": 0.1, "rho": 0.75, "eps": 0.25}, P0, G0, [0.9, -1.85]),
    # first step: b = g / (sqrt(v) + eps)
    ("rmsprop-momentum", "rmsprop", {"lr": 0.1, "rho": 0.75, "eps": 0.25, "momentum": 0.9}, P0, G0,
     [0.9, -1.85]),
    # s = g^2 = [0.25, 2.25]; sqrt(s) + eps = [1, 2]; 0.1 * g / that = [0.05, -0.075]
    ("adagrad", "adagrad", {"lr": 0.1, "eps": 0.5}, P0, G0, [0.95, -1.925]),
    # s = 7 + 9 = 16; sqrt(s) + eps = 5; 0.5 * g / 5 = [0.3, -0.3]
    ("adagrad-init", "adagrad", {"lr": 0.5, "eps": 1.0, "initial_accumulator": 7.0}, P0,
     [3.0, -3.0], [0.7, -1.7]),
]  # fmt: skip

# Hyper-parameters that switch on every piece of state and arithmetic.
RICH = {
    "sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "clip_norm": 2.0},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.01,
             "clip_norm": 2.0},
    "adamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1,
              "clip_norm": 2.0},
    "rmsprop": {"lr": 0.01, "rho": 0.8, "eps": 1e-6, "momentum": 0.5, "weight_decay": 0.01,
                "clip_norm": 2.0},
    "adagrad": {"lr": 0.1, "eps": 1e-6, "initial_accumulator": 0.1, "weight_decay": 0.01,
                "clip_norm": 2.0},
}  # fmt: skip

SHAPES = {"layers.0.W": (3, 4), "layers.0.b": (4,), "layers.2.W": (2, 2, 1, 3)}


def make(name: str, **kwargs):
    return OPTIMIZERS.get(name)(**kwargs)


def random_problem(seed: int, n_steps: int, dtype=np.float64):
    """Initial params and a list of per-step gradient dicts."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}
    grads = [
        {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()} for _ in range(n_steps)
    ]
    return params, grads


def run(opt, params, grads):
    """Step ``opt`` through ``grads`` updating ``params`` (a dict of arrays) in place."""
    for step_grads in grads:
        opt.step([(k, params[k], step_grads[k]) for k in params])
    return params


# -- golden steps -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GOLDEN, ids=[c[0] for c in GOLDEN])
def test_golden_step(case, dtype):
    _, name, kwargs, p, g, expected = case
    param, grad = np.array(p, dtype=dtype), np.array(g, dtype=dtype)
    make(name, **kwargs).step([("w", param, grad)])
    assert param.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(param, expected, rtol=rtol)


def test_every_optimizer_has_a_golden_step_and_rich_config():
    assert {c[1] for c in GOLDEN} == set(OPTIMIZERS.names())
    assert set(RICH) == set(OPTIMIZERS.names())
    assert set(REFERENCES) == set(OPTIMIZERS.names())


# -- several steps against hand-rolled reference loops ---------------------------------------


def ref_sgd(p, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    b = None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            b = g if b is None else momentum * b + g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def ref_adam(p, grads, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False):
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def ref_rmsprop(p, grads, lr, rho, eps, momentum=0.0, weight_decay=0.0):
    v, b = np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g**2
        b = momentum * b + g / (np.sqrt(v) + eps)
        p = p - lr * b
    return p


def ref_adagrad(p, grads, lr, eps, initial_accumulator=0.0, weight_decay=0.0):
    s = np.full_like(p, initial_accumulator)
    for g in grads:
        g = g + weight_decay * p
        s = s + g**2
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


REFERENCES = {
    "sgd": [
        ({"lr": 0.1, "momentum": 0.9}, lambda p, gs: ref_sgd(p, gs, 0.1, 0.9)),
        (
            {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
            lambda p, gs: ref_sgd(p, gs, 0.1, 0.9, True, 0.05),
        ),
    ],
    "adam": [
        ({"lr": 0.01}, lambda p, gs: ref_adam(p, gs, 0.01, 0.9, 0.999, 1e-8)),
        (
            {"lr": 0.02, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3, "weight_decay": 0.1},
            lambda p, gs: ref_adam(p, gs, 0.02, 0.5, 0.9, 1e-3, 0.1),
        ),
    ],
    "adamw": [
        ({"lr": 0.01}, lambda p, gs: ref_adam(p, gs, 0.01, 0.9, 0.999, 1e-8, 0.01, True)),
    ],
    "rmsprop": [
        ({"lr": 0.01}, lambda p, gs: ref_rmsprop(p, gs, 0.01, 0.9, 1e-8)),
        (
            {"lr": 0.01, "rho": 0.5, "momentum": 0.9, "weight_decay": 0.1},
            lambda p, gs: ref_rmsprop(p, gs, 0.01, 0.5, 1e-8, 0.9, 0.1),
        ),
    ],
    "adagrad": [
        (
            {"lr": 0.1, "initial_accumulator": 0.5, "weight_decay": 0.1},
            lambda p, gs: ref_adagrad(p, gs, 0.1, 1e-10, 0.5, 0.1),
        ),
    ],
}


@pytest.mark.parametrize(
    "name, kwargs, reference",
    [(name, kw, ref) for name, cases in REFERENCES.items() for kw, ref in cases],
)
def test_several_steps_match_reference_loop(name, kwargs, reference):
    params, grads = random_problem(0, n_steps=4)
    expected = {k: reference(p.copy(), [g[k] for g in grads]) for k, p in params.items()}
    run(make(name, **kwargs), params, grads)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-14)


# -- clipping ---------------------------------------------------------------------------------


def clipped_grads(clip_mode, clip_norm, grads):
    """The gradients SGD(lr=1) actually applied, and the norm that step() returned."""
    params = [np.zeros_like(g) for g in grads]
    opt = SGD(lr=1.0, clip_norm=clip_norm, clip_mode=clip_mode)
    norm = opt.step([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads))])
    return [-p for p in params], norm


def test_global_clipping_scales_all_gradients_together():
    grads = [np.array([3.0, 4.0]), np.array([[0.0, 12.0]])]  # norms 5 and 12, global 13
    applied, norm = clipped_grads("global", 6.5, grads)
    assert norm == 13.0
    np.testing.assert_allclose(applied[0], [1.5, 2.0])
    np.testing.assert_allclose(applied[1], [[0.0, 6.0]])
    assert math.isclose(math.sqrt(sum(np.sum(a**2) for a in applied)), 6.5)


def test_per_tensor_clipping_clips_each_tensor_on_its_own():
    grads = [np.array([3.0, 4.0]), np.array([[0.0, 12.0]])]
    applied, norm = clipped_grads("per_tensor", 6.5, grads)
    assert norm == 13.0  # always the global norm before clipping
    np.testing.assert_array_equal(applied[0], [3.0, 4.0])  # norm 5 < 6.5: untouched
    assert math.isclose(np.linalg.norm(applied[1]), 6.5)


@pytest.mark.parametrize("mode", ["global", "per_tensor"])
def test_no_clipping_below_the_threshold(mode):
    grads = [np.array([3.0, 4.0]), np.array([[0.0, 12.0]])]
    applied, _ = clipped_grads(mode, 100.0, grads)
    for a, g in zip(applied, grads):
        np.testing.assert_array_equal(a, g)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (3, 2), elements=st.floats(-1e3, 1e3)),
    arrays(np.float64, (4,), elements=st.floats(-1e3, 1e3)),
    st.floats(1e-3, 1e3),
)
def test_clipped_norm_never_exceeds_clip_norm(a, b, clip_norm):
    applied, norm = clipped_grads("global", clip_norm, [a, b])
    assert math.isclose(norm, math.sqrt(np.sum(a**2) + np.sum(b**2)), rel_tol=1e-12)
    total = math.sqrt(sum(np.sum(x**2) for x in applied))
    assert total <= clip_norm * (1 + 1e-12)
    if norm > clip_norm:
        assert math.isclose(total, clip_norm, rel_tol=1e-12)
    applied, _ = clipped_grads("per_tensor", clip_norm, [a, b])
    assert all(np.linalg.norm(x) <= clip_norm * (1 + 1e-12) for x in applied)


def test_step_returns_the_global_norm():
    params, grads = random_problem(1, n_steps=1)
    expected = math.sqrt(sum(np.sum(g**2) for g in grads[0].values()))
    norm = make("adam").step([(k, params[k], grads[0][k]) for k in params])
    assert isinstance(norm, float) and math.isclose(norm, expected, rel_tol=1e-12)
    assert make("adam").step([]) == 0.0


def test_grad_norm_is_the_global_norm():
    params, grads = random_problem(1, n_steps=1)
    expected = math.sqrt(sum(np.sum(g**2) for g in grads[0].values()))
    assert math.isclose(grad_norm([(k, params[k], grads[0][k]) for k in params]), expected)
    assert grad_norm([]) == 0.0
    assert math.isnan(grad_norm([("w", np.zeros(2), np.array([1.0, np.nan]))]))


@pytest.mark.parametrize("mode", ["global", "per_tensor"])
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_step_with_the_norm_given_equals_step_without(name, mode):
    params, grads = random_problem(7, n_steps=3)
    kwargs = {**RICH[name], "clip_norm": 0.5, "clip_mode": mode}  # clipping active
    computed = run(make(name, **kwargs), {k: p.copy() for k, p in params.items()}, grads)
    opt = make(name, **kwargs)
    for step_grads in grads:
        triples = [(k, params[k], step_grads[k]) for k in params]
        norm = grad_norm(triples)
        assert opt.step(triples, norm=norm) == norm
    for k in params:
        assert np.array_equal(params[k], computed[k]), k


# the true norm is 10, which clip_norm=5 would halve
@pytest.mark.parametrize("given, scale", [(20.0, 0.25), (2.0, 1.0)])
def test_global_clipping_uses_the_given_norm(given, scale):
    grads = [np.array([6.0, 8.0])]
    param = np.zeros(2)
    returned = SGD(lr=1.0, clip_norm=5.0).step([("w", param, grads[0])], norm=given)
    assert returned == given
    np.testing.assert_allclose(-param, grads[0] * scale, rtol=1e-15)


def test_per_tensor_clipping_uses_each_tensors_own_norm_whatever_the_given_norm():
    param, grad = np.zeros(2), np.array([3.0, 4.0])
    SGD(lr=1.0, clip_norm=2.5, clip_mode="per_tensor").step([("w", param, grad)], norm=1e9)
    np.testing.assert_allclose(-param, grad / 2, rtol=1e-15)


# -- in place, grads untouched, dtypes --------------------------------------------------------


@pytest.mark.parametrize("mode", ["global", "per_tensor"])
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_updates_params_in_place_and_leaves_grads_alone(name, mode):
    params, grads = random_problem(2, n_steps=3)
    before = {k: p.copy() for k, p in params.items()}
    refs = dict(params)
    grads_copy = [{k: g.copy() for k, g in step.items()} for step in grads]
    run(make(name, **{**RICH[name], "clip_norm": 0.5, "clip_mode": mode}), params, grads)
    for k in params:
        assert params[k] is refs[k]
        assert not np.array_equal(params[k], before[k])
    for step, step_copy in zip(grads, grads_copy):
        for k in step:
            np.testing.assert_array_equal(step[k], step_copy[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_params_and_state_keep_their_dtype(name, dtype):
    params, grads = random_problem(3, n_steps=2, dtype=dtype)
    opt = make(name, **RICH[name])
    run(opt, params, grads)
    assert all(p.dtype == dtype for p in params.values())
    state = opt.state_dict()
    assert len(state) > 1
    assert all(v.dtype == dtype for k, v in state.items() if k != "step")


def test_mismatched_gradient_shape_is_an_error():
    with pytest.raises(ValueError, match="layers.0.W: gradient shape"):
        make("sgd", lr=0.1).step([("layers.0.W", np.zeros((2, 3)), np.zeros((3, 2)))])


# -- state ------------------------------------------------------------------------------------


def roundtrip_npz(state: dict) -> dict:
    """Through np.savez and back: proves the state is plain arrays."""
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_resume_from_state_dict_is_bit_identical(name, dtype):
    params, grads = random_problem(4, n_steps=6, dtype=dtype)
    straight = run(make(name, **RICH[name]), {k: p.copy() for k, p in params.items()}, grads)

    first = make(name, **RICH[name])
    resumed = run(first, params, grads[:3])
    state = roundtrip_npz(first.state_dict())
    assert all(isinstance(v, np.ndarray) for v in first.state_dict().values())  # npz-ready
    assert int(state["step"]) == 3
    second = make(name, **RICH[name])
    second.load_state_dict(state)
    resumed = run(second, resumed, grads[3:])
    for k in params:
        assert np.array_equal(resumed[k], straight[k]), k


def test_state_dict_is_a_snapshot_and_names_its_slots():
    params, grads = random_problem(5, n_steps=2)
    opt = make("adam")
    run(opt, params, grads[:1])
    state = opt.state_dict()
    assert set(state) == {"step"} | {f"{s}.{k}" for s in ("m", "v") for k in SHAPES}
    saved = {k: v.copy() for k, v in state.items()}
    run(opt, params, grads[1:])
    for k in state:
        np.testing.assert_array_equal(state[k], saved[k])


def test_load_state_dict_rejects_foreign_entries():
    with pytest.raises(ValueError, match="'step'"):
        make("adam").load_state_dict({})
    with pytest.raises(ValueError, match="unexpected entry 'momentum.w'"):
        make("adam").load_state_dict({"step": np.array(1), "momentum.w": np.zeros(2)})


def test_loaded_state_of_the_wrong_shape_is_an_error():
    opt = make("adam")
    opt.load_state_dict({"step": np.array(1), "m.w": np.zeros(3), "v.w": np.zeros(3)})
    with pytest.raises(ValueError, match="m.w"):
        opt.step([("w", np.zeros(2), np.ones(2))])


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_get_config_round_trips(name):
    cls = OPTIMIZERS.get(name)
    config = {"type": name, **RICH[name], "clip_mode": "per_tensor"}
    opt = cls(**{k: v for k, v in config.items() if k != "type"})
    full = opt.get_config()
    assert {k: full[k] for k in config} == config
    opt.lr = 123.0  # a schedule overwrites lr; the configured value is what is reported
    assert cls(**{k: v for k, v in full.items() if k != "type"}).get_config() == full
    assert opt.get_config() == full


def test_defaults():
    assert make("adam").get_config() == {
        "type": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
        "weight_decay": 0.0, "clip_norm": None, "clip_mode": "global",
    }  # fmt: skip
    assert make("adamw").weight_decay == 0.01
    assert make("rmsprop").get_config()["rho"] == 0.9
    assert make("adagrad").get_config()["lr"] == 0.01
    with pytest.raises(TypeError):
        SGD()  # lr is required for SGD only


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_signature_is_the_argument_table(name):
    cls = OPTIMIZERS.get(name)
    parameters = inspect.signature(cls).parameters
    assert {n: p.default for n, p in parameters.items()} == {
        n: a.default for n, a in cls.arguments.items()
    }
    assert list(parameters)[-len(COMMON) :] == list(COMMON)  # own arguments first
    required = {n: 0.1 for n, p in parameters.items() if p.default is REQUIRED}
    defaults = {n: p.default for n, p in parameters.items() if p.default is not REQUIRED}
    assert cls(**required).get_config() == {"type": name, **required, **defaults}


def test_adamw_changes_only_the_weight_decay_default():
    adam, adamw = inspect.signature(Adam).parameters, inspect.signature(AdamW).parameters
    assert list(adam) == list(adamw)
    assert [n for n in adam if adam[n].default != adamw[n].default] == ["weight_decay"]
    assert adamw["weight_decay"].default == 0.01


def test_python_use_with_keywords_and_positions():
    assert SGD(lr=0.1, momentum=0.9).get_config() == SGD(0.1, 0.9).get_config()
    assert SGD(0.1, 0.9).momentum == 0.9
    with pytest.raises(TypeError, match="unexpected keyword argument 'betas'"):
        Adam(betas=(0.9, 0.99))
    with pytest.raises(TypeError, match="multiple values for argument 'lr'"):
        SGD(0.1, lr=0.2)


# -- bad arguments ----------------------------------------------------------------------------

BAD = [
    ("sgd", {"lr": -0.1}, "lr must be a positive number; got -0.1"),
    ("sgd", {"lr": 0}, "lr must be a positive number; got 0"),
    ("sgd", {"lr": float("nan")}, "lr must be a positive number"),
    ("sgd", {"lr": float("inf")}, "lr must be a positive number"),
    ("sgd", {"lr": "1e-3"}, "lr must be a positive number; got '1e-3'"),
    ("sgd", {"lr": True}, "lr must be a positive number"),
    ("sgd", {"lr": 0.1, "momentum": 1.0}, "momentum must be a number in [0, 1); got 1.0"),
    ("sgd", {"lr": 0.1, "momentum": -0.5}, "momentum must be a number in [0, 1)"),
    ("sgd", {"lr": 0.1, "nesterov": True}, "nesterov requires momentum > 0; got momentum=0.0"),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": "yes"}, "nesterov must be true or false"),
    ("sgd", {"lr": 0.1, "weight_decay": -1e-4}, "weight_decay must be a non-negative number"),
    ("adam", {"beta1": 1.0}, "beta1 must be a number in [0, 1); got 1.0"),
    ("adam", {"beta2": -0.1}, "beta2 must be a number in [0, 1)"),
    ("adam", {"eps": 0.0}, "eps must be a positive number; got 0.0"),
    ("adamw", {"weight_decay": -0.01}, "weight_decay must be a non-negative number"),
    ("rmsprop", {"rho": 1.0}, "rho must be a number in [0, 1)"),
    ("rmsprop", {"momentum": 1.5}, "momentum must be a number in [0, 1)"),
    ("adagrad", {"initial_accumulator": -1.0}, "initial_accumulator must be a non-negative"),
    ("adagrad", {"eps": -1e-10}, "eps must be a positive number"),
]  # fmt: skip
BAD += [
    (name, dict(lr=0.1, **bad), message)
    for name in OPTIMIZERS.names()
    for bad, message in [
        ({"clip_norm": 0.0}, "clip_norm must be a positive number or None; got 0.0"),
        ({"clip_norm": -1}, "clip_norm must be a positive number or None; got -1"),
        ({"clip_mode": "norm"}, "clip_mode must be one of 'global', 'per_tensor'; got 'norm'"),
    ]
]


@pytest.mark.parametrize("name, kwargs, message", BAD)
def test_bad_arguments_name_the_argument_rule_and_value(name, kwargs, message):
    with pytest.raises(ValueError) as info:
        make(name, **kwargs)
    assert message in str(info.value)


# -- optional PyTorch oracle ------------------------------------------------------------------

TORCH = {
    "sgd": [
        ({"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}, "SGD",
         {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        ({"lr": 0.1, "momentum": 0.8, "nesterov": True}, "SGD",
         {"lr": 0.1, "momentum": 0.8, "nesterov": True}),
    ],
    "adam": [
        ({"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1}, "Adam",
         {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ],
    "adamw": [
        ({"lr": 0.01, "weight_decay": 0.1}, "AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ],
    "rmsprop": [
        ({"lr": 0.01, "rho": 0.9, "weight_decay": 0.01}, "RMSprop",
         {"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "weight_decay": 0.01}),
        ({"lr": 0.01, "rho": 0.8, "eps": 1e-6, "momentum": 0.9}, "RMSprop",
         {"lr": 0.01, "alpha": 0.8, "eps": 1e-6, "momentum": 0.9}),
    ],
    "adagrad": [
        ({"lr": 0.1, "initial_accumulator": 0.1, "weight_decay": 0.01}, "Adagrad",
         {"lr": 0.1, "initial_accumulator_value": 0.1, "eps": 1e-10, "weight_decay": 0.01}),
    ],
}  # fmt: skip


def test_every_optimizer_has_a_torch_oracle():
    assert set(TORCH) == set(OPTIMIZERS.names())


@pytest.mark.parametrize(
    "name, kwargs, torch_name, torch_kwargs",
    [(name, *case) for name, cases in TORCH.items() for case in cases],
)
def test_matches_torch(name, kwargs, torch_name, torch_kwargs):
    torch = pytest.importorskip("torch")
    params, grads = random_problem(6, n_steps=5)
    tparams = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params.values()]
    topt = getattr(torch.optim, torch_name)(tparams, **torch_kwargs)
    for step_grads in grads:
        for t, g in zip(tparams, step_grads.values()):
            t.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    run(make(name, **kwargs), params, grads)
    for p, t in zip(params.values(), tparams):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=0, atol=1e-10)
