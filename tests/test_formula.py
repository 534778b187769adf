"""The formula parser: whitelist, linear/nonlinear split, exact derivatives, bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.formula import parse, to_text

CHINCHILLA = "E + A*N^-alpha + B*D^-beta"


def test_chinchilla_split_and_columns():
    f = parse(CHINCHILLA, ("N", "D"))
    assert f.params == ("E", "A", "alpha", "B", "beta")
    assert f.linear == ("E", "A", "B") and f.nonlinear == ("alpha", "beta")
    assert [to_text(c) for c in f.columns] == ["1", "N^(-alpha)", "D^(-beta)"]
    assert f.default_bounds()["E"] == (0.0, "min_y")
    assert f.default_bounds()["alpha"] == (0.0, float("inf"))


def test_label_and_caret_precedence():
    """``Y = a*N^-alpha*V^-beta`` is a * (N^-alpha) * (V^-beta), not ((a*N)^-alpha)..."""
    f = parse("Y = a * N^-alpha * V^-beta + E", ("N", "V"))
    env = {"N": np.array([2.0]), "V": np.array([8.0]), "a": 3.0, "alpha": 0.5, "beta": 1 / 3,
           "E": 0.1}
    assert f(env) == pytest.approx(3.0 * 2 ** -0.5 * 8 ** (-1 / 3) + 0.1, rel=1e-15)


def test_three_axis_and_loglinear_split():
    f = parse("a * N^-alpha * V^-beta * R^-gamma + E", ("N", "V", "R"))
    assert f.linear == ("a", "E") and f.nonlinear == ("alpha", "beta", "gamma")
    g = parse("c - beta*ln(V)", ("V",))
    assert g.linear == ("c", "beta") and g.nonlinear == ()
    assert g.default_bounds()["c"] == (-float("inf"), float("inf"))  # an intercept is free


def test_product_of_parameters_keeps_one_linear():
    f = parse("a*b*N + c", ("N",))
    assert f.linear == ("a", "c") and f.nonlinear == ("b",)


def test_basis_reproduces_the_law():
    f = parse("A*(N + N0)^-alpha + E", ("N",))
    N = np.geomspace(0.5, 70, 9)
    theta = {"A": 2.0, "N0": 0.3, "alpha": 0.4, "E": 0.05}
    X, off = f.basis({"N": N, "N0": 0.3, "alpha": 0.4})
    lin = np.array([theta[p] for p in f.linear])
    np.testing.assert_allclose(off + X @ lin, f({"N": N, **theta}), rtol=1e-14)


def test_basis_broadcasts_over_a_grid_of_exponents():
    f = parse(CHINCHILLA, ("N", "D"))
    N, D = np.geomspace(1, 100, 7), np.geomspace(10, 1e4, 7)
    grid = np.linspace(0.1, 1, 5)[:, None]
    X, off = f.basis({"N": N, "D": D, "alpha": grid, "beta": grid})
    assert X.shape == (5, 7, 3) and off.shape == (5, 7)
    np.testing.assert_allclose(X[2, :, 1], N ** -grid[2, 0])


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 2.0), st.floats(0.05, 2.0), st.floats(0.1, 50), st.floats(0.1, 50),
       st.floats(0.0, 3.0))
def test_jacobian_matches_central_differences(alpha, beta, A, B, E):
    """The symbolic Jacobian agrees with finite differences (a property test)."""
    f = parse("E + A*N^-alpha + B*exp(-beta*sqrt(D))/log(1 + D)", ("N", "D"))
    rng = np.random.default_rng(1)
    env = {"N": rng.uniform(0.5, 20, 6), "D": rng.uniform(0.5, 20, 6), "E": E, "A": A,
           "alpha": alpha, "B": B, "beta": beta}
    J = f.jacobian(env)
    for i, p in enumerate(f.params):
        h = 1e-6 * max(1.0, abs(env[p]))
        up, down = dict(env), dict(env)
        up[p] += h
        down[p] -= h
        fd = (f(up) - f(down)) / (2 * h)
        np.testing.assert_allclose(J[:, i], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os').system('x')", "unknown function"),
    ("__import__('os') * N", "unknown function '__import__'"),
    ("N.real + a", "attribute access"),
    ("a[0] * N", "indexing"),
    ("foo(N) + a", "unknown function 'foo'"),
    ("a * N +", "not a valid expression"),
    ("'text'", "the constant 'text'"),
    ("a * (N < 2)", "a comparison"),
    ("log(N, 2) * a", "exactly one argument"),
    ("a * log", "is a function"),
    ("(lambda: 1)() + N", "unknown function"),
    ("", "empty"),
    ("a * N" + " + a" * 200, "limit"),
])
def test_refused_formulas(text, fragment):
    with pytest.raises(ScalingError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        parse(text, ("N",))


def test_no_axis_and_no_parameter():
    with pytest.raises(ScalingError, match="uses none of the bound axes"):
        parse("a + b", ("N", "V"))
    with pytest.raises(ScalingError, match="no parameters"):
        parse("N^-0.5", ("N",))


def test_names_cannot_escape_into_python():
    """Parsing never evaluates: a name like __class__ is just a parameter name."""
    f = parse("__class__ * N", ("N",))
    assert f.params == ("__class__",)
    assert f({"N": np.array([2.0]), "__class__": 3.0})[0] == 6.0
