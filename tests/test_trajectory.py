"""Stage 8: GF = MF along trajectories and the implicit-bias limit (mirrorsym._trajectory).

The true potential of every commuting recipe passes both checks; potentials that are wrong in the
ways a derivation can go wrong fail the checks that can see them; a non-commuting G fails the
trajectory check with any candidate potential. Perturbation tests run at 15 digits (the fast mode):
a perturbation of 1e-3 is eleven orders of magnitude above the tolerance 10^(8 - 15) there.
"""

import dataclasses

import mpmath as mp
import pytest
import sympy as sp
from conftest import derived

import mirrorsym
from mirrorsym import _trajectory as tr
from mirrorsym._numeric import mp_function

CLOSED = ["hyperbolic-entropy", "azulay-shape", "egu", "deep-one-sided-3", "quadratic-separable"]
IMPLICIT = ["woodworth-depth-3", "woodworth-depth-4", "quadratic-generic"]
SENSITIVITY = ["hyperbolic-entropy", "azulay-shape", "quadratic-separable", "egu", "woodworth-depth-3",
               "quadratic-generic"]


def check(name: str, which: str, potential=None, dps: int = 15, seed: int = 0, **kw):
    d = derived(name)
    with mp.workdps(dps):
        potential = potential(d) if potential is not None else d.numeric()
        return tr._RUNNERS[which](d.parametrization, d.jacobian, potential, dps=dps, seed=seed, **kw)


# --- the true potentials pass -------------------------------------------------------------------

@pytest.mark.parametrize("name", CLOSED + ["woodworth-depth-3"])
def test_true_potential_passes_at_30_digits(name):
    for c in tr.run_checks(derived(name), dps=30):
        assert c.passed, c.detail
        assert c.tolerance == pytest.approx(1e-22) and c.points >= (12 if c.name == "trajectory" else 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["woodworth-depth-4", "quadratic-generic"])
def test_true_implicit_potential_passes_at_30_digits(name):
    for c in tr.run_checks(derived(name), dps=30):
        assert c.passed, c.detail


@pytest.mark.parametrize("name", CLOSED + IMPLICIT)
def test_true_potential_passes_in_fast_mode(name):
    checks = tr.run_checks(derived(name), dps=15)
    assert [c.name for c in checks] == ["trajectory", "bias"]
    for c in checks:
        assert c.passed and c.tolerance == pytest.approx(1e-7), c.detail


def test_trajectory_detail_reports_path():
    c = check("hyperbolic-entropy", "trajectory")
    assert c.points == 12
    for part in ("12 times up to T =", "w moved", "required", "max |∇R + ∫∇L|", "max |w_MF − G(x)|", "seed 0"):
        assert part in c.detail


def test_bias_stacks_scalar_models():
    c = check("egu", "bias")
    assert c.passed and "Z is 1 × 2 (two stacked copies of the d = 1 model)" in c.detail
    c = check("quadratic-separable", "bias")
    assert c.passed and "Z is 1 × 2," in c.detail


def test_seeds_replay_and_differ():
    a, b, c = (check("azulay-shape", "trajectory", seed=s) for s in (3, 3, 4))
    assert a == b
    assert a.detail != c.detail and c.passed


# --- wrong potentials fail ----------------------------------------------------------------------

class Perturbed:
    """A wrapper of a potential's evaluate(w) -> (R, ∇R, ∇²R)."""

    def __init__(self, base, change):
        self.base, self.change = base, change

    def evaluate(self, w):
        R, g, H = self.base.evaluate(w)
        return self.change(w, R, list(g), H)


def scaled(d):
    s = 1 + mp.mpf("1e-3")
    return Perturbed(d.numeric(), lambda w, R, g, H: (s * R, [s * v for v in g], s * H))


def affine(d):
    c = mp.mpf("1e-3")
    return Perturbed(d.numeric(), lambda w, R, g, H: (R + c * mp.fsum(w), [v + c for v in g], H))


def branch(d):
    """∇R shifted by 0.05 sign(w − w0): a branch that switches at the special point w0."""
    w0 = tr._Model.of(d.parametrization, d.jacobian).w0
    return Perturbed(d.numeric(), lambda w, R, g, H: (R, [v + mp.mpf("0.05") * mp.sign(a - b)
                                                          for v, a, b in zip(g, w, w0)], H))


OTHER_VALUES = {"hyperbolic-entropy": {"alpha": 0.6}, "azulay-shape": {"a": 0.7}, "egu": {"c": 1.1},
                "woodworth-depth-3": {"alpha": 0.6}}


def other_init(d):
    """R of the same G from another initialisation: other parameter values, or x0 scaled by 11/10."""
    p = d.parametrization
    if p.name in OTHER_VALUES:
        return d.numeric(**OTHER_VALUES[p.name])
    return mirrorsym.derive(dataclasses.replace(p, x0=tuple(v * sp.Rational(11, 10) for v in p.x0))).numeric()


# A scaled R has the same argmin on every affine set, so the bias check cannot see a scale; the
# trajectory check pins it (MATH.md §4: with unit learning rate R has no free scale).
CAUGHT = {scaled: ("trajectory",), affine: ("trajectory", "bias"), branch: ("trajectory", "bias"),
          other_init: ("trajectory", "bias")}


@pytest.mark.parametrize("change", list(CAUGHT), ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", SENSITIVITY)
def test_wrong_potential_fails(name, change):
    for which in tr.CHECKS:
        c = check(name, which, change)
        assert c.passed == (which not in CAUGHT[change]), c.detail
        if not c.passed:
            assert 1e-5 < c.max_error < float("inf"), c.detail
            lead = "∇R(w(t)) + ∫∇L ≠ 0" if which == "trajectory" else "GF limit ≠ argmin R"
            assert c.detail.startswith(lead), c.detail


def test_even_branch_of_hyperbolic_entropy_fails():
    """R(|w|) instead of R(w): right for w > 0, the wrong root for w < 0, where both checks go."""
    def flip(d):
        return Perturbed(d.numeric(), lambda w, R, g, H: (R, [v if x > 0 else -v for v, x in zip(g, w)], H))

    for which in tr.CHECKS:
        c = check("hyperbolic-entropy", which, flip, seed=1)
        assert not c.passed, c.detail


def test_scaled_potential_fails_the_mirror_flow_too():
    c = check("woodworth-depth-3", "trajectory", scaled)
    assert "mirror flow ≠ G(x(t))" in c.detail


def test_potential_outside_its_domain_fails():
    """A potential whose dom R excludes the path: the failure names the domain."""
    def narrow(d):
        def change(w, R, g, H):
            if abs(w[0]) > mp.mpf("0.05"):
                raise mirrorsym.DomainError(f"w = {w[0]} is outside dom R")
            return R, g, H
        return Perturbed(d.numeric(), change)

    c = check("hyperbolic-entropy", "trajectory", narrow)
    assert not c.passed and c.max_error == float("inf")
    assert c.detail.startswith("∇R(w(t)) + ∫∇L ≠ 0: ∇R is undefined at G(x(t))"), c.detail
    assert "mirror flow ≠ G(x(t)): the mirror flow stopped at t = " in c.detail and "outside dom R" in c.detail


def test_a_path_that_does_not_move_proves_nothing():
    c = check("hyperbolic-entropy", "trajectory", T=mp.mpf("1e-4"))
    assert not c.passed and c.max_error == float("inf")
    assert "the path proves nothing" in c.detail


# --- not commuting: no candidate survives --------------------------------------------------------

def single_neuron_candidates():
    """Candidates for w = a·b (literature.md N1), each normalised so that ∇R(w0) = 0."""
    d = derived("single-neuron")
    p = d.parametrization
    a0, b1, b2 = (sp.nsimplify(v) for v in p.x0)
    delta = a0**2 - b1**2 - b2**2
    w = sp.symbols("w1 w2", real=True)
    t = sp.sqrt(delta**2 + 4 * (w[0] ** 2 + w[1] ** 2))
    warped = sp.sqrt(2) / 6 * sp.sqrt(delta + t) * (t - 2 * delta)  # ∇P = b, ∇²P J Jᵀ = a I
    H0 = sp.Matrix([[a0**2 + b1**2, b1 * b2], [b1 * b2, a0**2 + b2**2]])
    w0 = sp.Matrix([a0 * b1, a0 * b2])
    quadratic = ((sp.Matrix(w) - w0).T * H0.inv() * (sp.Matrix(w) - w0))[0] / 2
    return d, {"time-warped P": warped, "quadratic": quadratic}, w0


class Formula:
    """evaluate(w) of a closed-form R(w), minus its affine part at w0."""

    def __init__(self, R, w, w0):
        grad = [sp.diff(R, v) for v in w]
        self.g = mp_function(w, grad, {})
        self.H = mp_function(w, [sp.diff(gi, v) for gi in grad for v in w], {})
        self.g0 = [mp.mpf(sp.N(gi.subs(dict(zip(w, w0))), 40)) for gi in grad]

    def evaluate(self, w):
        H = self.H(*w)
        return mp.mpf(0), [a - b for a, b in zip(self.g(*w), self.g0)], mp.matrix([[H[0], H[1]], [H[2], H[3]]])


@pytest.mark.parametrize("candidate", ["time-warped P", "quadratic"])
def test_single_neuron_has_no_potential(candidate):
    d, candidates, w0 = single_neuron_candidates()
    w = sp.symbols("w1 w2", real=True)
    with mp.workdps(15):
        pot = Formula(candidates[candidate], w, list(w0))
        c = tr.trajectory_check(d.parametrization, d.jacobian, pot, dps=15)
    assert not c.passed and c.points == 12
    assert c.detail.startswith("∇R(w(t)) + ∫∇L ≠ 0: max error"), c.detail
    assert c.max_error > 1e-4


def test_run_checks_interface():
    d = derived("single-neuron")
    checks = tr.run_checks(d)
    assert [c.points for c in checks] == [0, 0]
    assert all("not applicable" in c.detail and not c.passed for c in checks)
    assert tr.run_checks(derived("egu"), names=("bias",), dps=15)[0].name == "bias"
    with pytest.raises(ValueError, match="unknown check"):
        tr.run_checks(derived("egu"), names=("hessian",))


# --- the integrator -----------------------------------------------------------------------------

def test_integrator_reaches_working_precision():
    with mp.workdps(30):
        t, y, _, steps = tr._integrate(lambda t, y: [y[1], -y[0]], mp.mpf(0), [mp.mpf(0), mp.mpf(1)], mp.mpf(3),
                                       mp.mpf(10) ** -25, mp.mpf("0.1"))
        assert t == 3 and abs(y[0] - mp.sin(3)) < 1e-24 and abs(y[1] - mp.cos(3)) < 1e-24
        assert steps < 40


def descend(t, y):
    if y[0] <= 0:
        raise mirrorsym.DomainError("y ≤ 0 is outside the domain")
    return [mp.mpf(-1)]


def test_integrator_reports_blow_up_and_domain_exit():
    with mp.workdps(15):
        with pytest.raises(tr._IntegrationError, match=r"at t = 0\.99.*(blows up|collapsed)"):  # the pole t = 1
            tr._integrate(lambda t, y: [y[0] ** 2], mp.mpf(0), [mp.mpf(1)], mp.mpf(2), mp.mpf(10) ** -10, mp.mpf("0.1"))
        with pytest.raises(tr._IntegrationError, match=r"at t = 1\.0.*collapsed \(y ≤ 0"):
            tr._integrate(descend, mp.mpf(0), [mp.mpf(1)], mp.mpf(2), mp.mpf(10) ** -10, mp.mpf("0.1"))


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "egu.png"
    tr.plot(derived("egu"), str(out))
    assert out.stat().st_size > 1000
