"""``benchmarks/product_floor.py`` lists the matrix products of a training step: over the
parts of a split batch they add up to the FLOPs the step benchmark counts from the
network's weights, and the layers that compute no input gradient make none."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import product_floor
import step_benchmark


@pytest.mark.parametrize("case", step_benchmark.ALL_CASES)
def test_products_add_up_to_the_counted_flops(case):
    network, sizes, parts = product_floor.products_of_case(case)
    assert sum(sizes) == step_benchmark.case_batch(case)
    listed = sum(p.flops for part in parts for p in part)
    counted = step_benchmark.step_flops(case) or step_benchmark.config_step_flops(
        network, step_benchmark.case_batch(case)
    )
    assert listed == counted


def test_first_layer_has_no_input_gradient_product():
    _, _, parts = product_floor.products_of_case("resnet")
    roles = {(p.layer, p.role) for p in parts[0]}
    assert ("0", "weight gradient") in roles
    assert ("0", "input gradient") not in roles
    assert ("4.0", "input gradient") in roles


def test_parts_run_on_threads_and_report_each_repeat():
    part = [product_floor.Product("x", "forward", 64, 32, 16)]
    times = product_floor.time_parts([part, part], repeats=4, warmup=1)
    assert len(times) == 4 and all(t > 0 for t in times)
