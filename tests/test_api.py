"""The public API: every name in ``__all__`` resolves, and importing stays light."""

import subprocess
import sys

import scaling


def test_every_exported_name_resolves():
    for name in scaling.__all__:
        assert getattr(scaling, name) is not None, name


def test_import_scaling_loads_no_heavy_module():
    code = ("import sys, scaling; heavy = {'torch', 'matplotlib', 'transformers', 'scipy', "
            "'pandas', 'dask'} & set(sys.modules); print(sorted(heavy))")  # scipy: fit only
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plan_library_path_without_torch_or_matplotlib():
    code = ("import sys, scaling; scaling.plan(scaling.PAPER_LAW, flops=1e13, text_tokens=50); "
            "print(sorted({'torch', 'matplotlib', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plan_and_frontier_are_functions_whatever_the_import_order():
    code = ("import scaling.planner.problem, scaling.planner.answer, scaling.planner.mix, scaling; "
            "print(callable(scaling.plan) and not hasattr(scaling.plan, '__path__'), "
            "type(scaling.frontier).__name__, type(scaling.plan).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "function", "function"]
    law = scaling.PAPER_LAW
    front = scaling.frontier(law, [1e12, 1e13], text_tokens=50)
    assert front.visual_tokens.shape == (2,)
    assert scaling.plan(law, flops=1e13).optimum.visual_tokens == 1  # Q = 0: fewest tokens
