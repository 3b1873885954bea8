"""The numerical inverses of grad Q (mirrorsym._solvers) against mpmath ground truth.

Ground truth is built forwards: a random nu (or mu) in U, s = g(nu) (or w = grad Q(mu)) at 50 digits,
then each solver must recover nu. Examples: the depth-L Woodworth pieces (bounded U with poles at
both ends, literature L5), a sinh-type piece on all of R, a one-sided piece (image (0, inf)), and
the joint quadratic-commuting exponential family (literature L6).
"""

from __future__ import annotations

import builtins
import functools
import symtable

import mpmath
import numpy as np
import pytest
from conftest import derived
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp, mpf

from mirrorsym._errors import DomainError
from mirrorsym._numpy_export import numpy_module
from mirrorsym._solvers import NUMPY_SOLVER_SOURCE, _max_abs, convex_newton_mp, scalar_inverse_mp, solver_source

pytestmark = pytest.mark.filterwarnings("error")

_NS = {"np": np}
exec(NUMPY_SOLVER_SOURCE, _NS)
scalar_np, newton_np = _NS["_scalar_inverse"], _NS["_convex_newton"]

ALPHA = 0.7


class Piece:
    """A scalar piece g = q' on U = (lo, hi), written once for mpmath and numpy (``lib``)."""

    def __init__(self, name, g, dg, lo, hi, sample, atol=1e-15):
        self.name, self._g, self._dg, self.lo, self.hi, self.sample = name, g, dg, lo, hi, sample
        self.atol = atol  # float64 g cancels near nu = 0: it fixes nu only to about this there

    def g_mp(self, x):
        return self._g(x, mpmath)

    def dg_mp(self, x):
        return self._dg(x, mpmath)

    def g_np(self, x):
        return self._g(x, np)

    def dg_np(self, x):
        return self._dg(x, np)

    def truth(self, n, seed):
        """(nu, s) at 50 digits, nu drawn by ``sample`` (floats, so that numpy sees the same nu)."""
        nus = self.sample(np.random.default_rng(seed), n)
        with mp.workdps(50):
            return nus, [self.g_mp(mpf(v)) for v in nus]


def woodworth(L, alpha=ALPHA):
    """grad Q of w = u^L - v^L at u0 = v0 = alpha: U = (-c, c) with poles at both ends."""
    k, b, p = alpha ** (2 - L), L * (L - 2), L / (L - 2)  # floats: mpmath sees the same function
    c = k / b

    def sample(rng, n):
        ends = c * np.array([1 - 1e-6, -(1 - 1e-6), 1 - 1e-3, -(1 - 1e-3), 1e-3, -0.5])
        return np.concatenate([ends, rng.uniform(-c, c, n - ends.size)])

    return Piece(
        f"woodworth-{L}",
        lambda x, lib: (k - b * x) ** -p - (k + b * x) ** -p,
        lambda x, lib: p * b * ((k - b * x) ** (-p - 1) + (k + b * x) ** (-p - 1)),
        -c,
        c,
        sample,
        atol=1e-15 * max(1, c),
    )


def _sinh_sample(rng, n):
    return np.concatenate([[7.2, -7.5, 1e-6, 0.3], rng.uniform(-15, 15, n - 4)])


SINH = Piece(
    "sinh",
    lambda x, lib: 1.5 * lib.exp(2 * x) - 0.4 * lib.exp(-2 * x),
    lambda x, lib: 3.0 * lib.exp(2 * x) + 0.8 * lib.exp(-2 * x),
    -np.inf,
    np.inf,
    _sinh_sample,
)

_K1 = 1 / ALPHA
_C1 = _K1 / 3


def _one_sided_sample(rng, n):
    ends = [_C1 * (1 - 1e-6), -1e6, -1.0, 0.1]
    return np.concatenate([ends, _C1 - np.exp(rng.uniform(-8, 6, n - len(ends)))])


ONE_SIDED = Piece(
    "one-sided",
    lambda x, lib: (_K1 - 3 * x) ** -3,
    lambda x, lib: 9 * (_K1 - 3 * x) ** -4,
    -np.inf,
    _C1,
    _one_sided_sample,
)

# depth 5 at alpha = 0.05: U = (-533, 533), so the probes double before approaching the poles, and
# g is complex (mpmath) or NaN (numpy) beyond them
PIECES = [woodworth(3), woodworth(4), woodworth(5, alpha=0.05), SINH, ONE_SIDED]
ids = [pc.name for pc in PIECES]


# ---------------------------------------------------------------- scalar, mpmath


@pytest.mark.parametrize("pc", PIECES, ids=ids)
def test_scalar_mp_recovers_nu(pc):
    nus, ss = pc.truth(40, seed=1)
    for nu, s in zip(nus, ss):
        got = scalar_inverse_mp(pc.g_mp, pc.dg_mp, s, pc.lo, pc.hi)
        assert isinstance(got, mpf)
        assert abs(got - mpf(nu)) <= mpf("1e-25") * abs(mpf(nu)) + mpf("1e-28"), (pc.name, nu)


FAR_OUT = [(pc, s) for pc in PIECES for s in (1e6, -1e6) if not (pc is ONE_SIDED and s < 0)]


@pytest.mark.parametrize(("pc", "s"), FAR_OUT, ids=[f"{pc.name}-{s:g}" for pc, s in FAR_OUT])
def test_scalar_mp_far_out(pc, s):
    with mp.workdps(50):
        nu = scalar_inverse_mp(pc.g_mp, pc.dg_mp, s, pc.lo, pc.hi)
        # nu is the exact root up to a relative change of nu of 1e-45, far below 1e-25 at 30 digits
        assert abs(pc.g_mp(nu) - s) <= mpf("1e-45") * abs(nu * pc.dg_mp(nu))


def test_scalar_mp_closed_forms():
    s = mpf(10) ** 6
    a = (s + mp.sqrt(s**2 + 4 * mpf(1.5) * mpf(0.4))) / (2 * mpf(1.5))
    assert mp.almosteq(scalar_inverse_mp(SINH.g_mp, SINH.dg_mp, s, -mp.inf, mp.inf), mp.log(a) / 2, 1e-27)
    nu = scalar_inverse_mp(ONE_SIDED.g_mp, ONE_SIDED.dg_mp, s, -mp.inf, _C1)
    assert mp.almosteq(nu, (mpf(_K1) - mp.cbrt(1 / s)) / 3, 1e-27)
    assert scalar_inverse_mp(SINH.g_mp, SINH.dg_mp, mpf(1.5) - mpf(0.4), -mp.inf, mp.inf) == 0


@pytest.mark.parametrize("s", [0, -1, -1e-300, mp.ninf, mp.nan])
def test_scalar_mp_outside_image(s):
    with pytest.raises(DomainError, match="outside dom R"):
        scalar_inverse_mp(ONE_SIDED.g_mp, ONE_SIDED.dg_mp, s, -mp.inf, _C1)


def test_scalar_mp_bounded_image():
    """g = tanh has image (-1, 1): s = 1 is out (g(nu) rounds to 1 for large nu, but never passes it)."""
    def dg(x):
        return 1 / mp.cosh(x) ** 2

    assert mp.almosteq(scalar_inverse_mp(mp.tanh, dg, mpf("0.999"), -mp.inf, mp.inf), mp.atanh(mpf("0.999")))
    with pytest.raises(DomainError, match=r"w = 1\.0 is outside dom R \(grad Q < 1 up to mu"):
        scalar_inverse_mp(mp.tanh, dg, 1, -mp.inf, mp.inf)


def test_scalar_mp_failing_evaluations_are_beyond():
    """A g that raises next to its pole (and returns complex numbers past it) is still solved."""
    k = mpf(_K1)
    c = k / 3  # the exact pole: the float _C1 may lie just beyond it

    def g(x):
        return (k - 3 * x) ** mpf(-2.5)  # raises at the pole, complex beyond it

    def dg(x):
        return mpf(7.5) * (k - 3 * x) ** mpf(-3.5)

    nu = c * (1 - mpf("1e-20"))
    with mp.workdps(50):
        s = g(nu)
    assert mp.almosteq(scalar_inverse_mp(g, dg, s, -mp.inf, c), nu, 1e-25)


# ---------------------------------------------------------------- scalar, numpy


@pytest.mark.parametrize("pc", PIECES, ids=ids)
@pytest.mark.parametrize("shape", [(1000,), (10, 7)])
def test_scalar_np_recovers_nu(pc, shape):
    nus, ss = pc.truth(int(np.prod(shape)), seed=2)
    got = scalar_np(pc.g_np, pc.dg_np, np.array([float(s) for s in ss]).reshape(shape), pc.lo, pc.hi)
    assert got.shape == shape
    np.testing.assert_allclose(got.ravel(), nus, rtol=1e-12, atol=pc.atol)


@pytest.mark.parametrize("pc", PIECES, ids=ids)
def test_scalar_np_far_out(pc):
    ss = [1e6] if pc is ONE_SIDED else [1e6, -1e6]
    with mp.workdps(50):
        ref = [float(scalar_inverse_mp(pc.g_mp, pc.dg_mp, s, pc.lo, pc.hi)) for s in ss]
    np.testing.assert_allclose(scalar_np(pc.g_np, pc.dg_np, np.array(ss), pc.lo, pc.hi), ref, rtol=1e-13)


def test_scalar_np_nan_and_scalar_input():
    pc = woodworth(3)
    got = scalar_np(pc.g_np, pc.dg_np, np.array([np.nan, 0.0, 1.0]), pc.lo, pc.hi)
    assert np.isnan(got[0]) and got[1] == 0.0 and np.isfinite(got[2])
    assert scalar_np(pc.g_np, pc.dg_np, 1.0, pc.lo, pc.hi).shape == ()


@pytest.mark.parametrize("bad", [0.0, -1.0, -np.inf])
def test_scalar_np_outside_image(bad):
    s = np.array([[2.0, 3.0], [bad, -5.0]])
    with pytest.raises(ValueError, match=rf"w = {bad!r} is outside dom R \(the image of grad Q is \(0, "):
        scalar_np(ONE_SIDED.g_np, ONE_SIDED.dg_np, s, -np.inf, _C1)


@given(st.floats(-0.99999, 0.99999))
def test_scalar_np_depth4_property(frac):
    pc = woodworth(4)
    nu = frac * pc.hi
    with mp.workdps(50):
        s = float(pc.g_mp(mpf(nu)))
    got = scalar_np(pc.g_np, pc.dg_np, np.array([s]), pc.lo, pc.hi)[0]
    assert abs(got - nu) <= 1e-12 * abs(nu) + pc.atol


# ---------------------------------------------------------------- joint pieces

LAM = np.array([[1.0, 2.0], [2.0, -1.0], [-1.0, 1.0]])
C2 = np.array([0.5, 1.3, 0.8])


def exp_family_mp():
    """Q(mu) = 1/4 sum_k c_k^2 (exp(2 <lam_k, mu>) - 1) and its derivatives, for mp.matrix mu."""

    def e(mu):
        return [mpf(c) * mp.exp(2 * (mpf(l0) * mu[0] + mpf(l1) * mu[1])) for c, (l0, l1) in zip(C2, LAM)]

    def Q(mu):
        return mp.fsum(ek - mpf(c) for ek, c in zip(e(mu), C2)) / 4

    def grad(mu):
        return [mp.fsum(ek * mpf(lam[i]) for ek, lam in zip(e(mu), LAM)) / 2 for i in range(2)]

    def hess(mu):
        ek = e(mu)
        return mp.matrix([[mp.fsum(v * mpf(lam[i] * lam[j]) for v, lam in zip(ek, LAM)) for j in range(2)]
                          for i in range(2)])

    return Q, grad, hess


def exp_family_np():
    def Q(mu):
        return 0.25 * (C2 * (np.exp(2 * mu @ LAM.T) - 1)).sum(axis=-1)

    def grad(mu):
        return 0.5 * (C2 * np.exp(2 * mu @ LAM.T)) @ LAM

    def hess(mu):
        return np.einsum("...k,ki,kj->...ij", C2 * np.exp(2 * mu @ LAM.T), LAM, LAM)

    return Q, grad, hess


def _mu_truth(n, seed, grad, box=1.0):
    mus = np.random.default_rng(seed).uniform(-box, box, (n, 2))
    with mp.workdps(50):
        return mus, [grad(mp.matrix([mpf(v) for v in m])) for m in mus]


def _close_mp(got, mu, rel):
    scale = max(1, *(abs(v) for v in mu))
    return max(abs(got[i] - mpf(mu[i])) for i in range(len(mu))) <= rel * scale


def test_joint_mp_recovers_mu():
    Q, grad, hess = exp_family_mp()
    mus, ws = _mu_truth(25, seed=3, grad=grad)
    for mu, w in zip(mus, ws):
        got = convex_newton_mp(Q, grad, hess, w)
        assert (got.rows, got.cols) == (2, 1)
        assert _close_mp(got, mu, mpf("1e-25")), mu
    assert convex_newton_mp(Q, grad, hess, grad(mp.matrix(2, 1))) == mp.matrix(2, 1)


@pytest.mark.parametrize("w", [[-1, -1], [1, -1], [0, 0], [-1e-3, 1e-3]])
def test_joint_mp_outside_cone(w):
    Q, grad, hess = exp_family_mp()
    with pytest.raises(DomainError, match="outside dom R"):
        convex_newton_mp(Q, grad, hess, w)


@pytest.mark.parametrize("shape", [(1000,), (10, 7)])
def test_joint_np_recovers_mu(shape):
    _, grad_mp, _ = exp_family_mp()
    mus, ws = _mu_truth(int(np.prod(shape)), seed=4, grad=grad_mp)
    w = np.array([[float(v) for v in wk] for wk in ws]).reshape(shape + (2,))
    got = newton_np(*exp_family_np(), w)
    assert got.shape == shape + (2,)
    err = np.abs(got.reshape(-1, 2) - mus).max(axis=1) / np.maximum(1, np.abs(mus).max(axis=1))
    assert err.max() <= 1e-12


def test_joint_np_ill_conditioned():
    """Towards the edges of the cone hess Q grows ill conditioned; mu is then as good as float64 allows."""
    Q, grad, hess = exp_family_np()
    mus, ws = _mu_truth(300, seed=6, grad=exp_family_mp()[1], box=2.0)
    got = newton_np(Q, grad, hess, np.array([[float(v) for v in wk] for wk in ws]))
    err = np.abs(got - mus).max(axis=1) / np.maximum(1, np.abs(mus).max(axis=1))
    cond = np.linalg.cond(hess(mus))
    assert cond.max() > 1e6
    assert (err <= 1e-12 + 4 * np.finfo(float).eps * cond).all()


def test_joint_np_outside_cone_and_nan():
    fns = exp_family_np()
    w = np.array([[1.0, 1.0], [np.nan, 2.0], [-1.0, -1.0], [1.0, -1.0]])
    with pytest.raises(ValueError, match=r"w = \[-1\.0, -1\.0\] is outside dom R"):
        newton_np(*fns, w)
    got = newton_np(*fns, w[:2])
    assert np.isnan(got[1]).all() and np.isfinite(got[0]).all()


# A joint piece with a bounded U: Q(mu) = sum_i q(<m_i, mu>) for the depth-3 Woodworth q, coupled by
# the rows m_i of M; U = {|M mu|_inf < c}. Newton from 0 towards a far-out w jumps past the poles.
M = np.array([[1.0, 0.5], [-0.3, 1.0]])
W3 = woodworth(3)
_K3 = ALPHA**-1


def bounded_fns(lib):
    def q(v):
        return ((_K3 - 3 * v) ** -2 + (_K3 + 3 * v) ** -2 - 2 * _K3**-2) / 6

    if lib is np:
        return (
            lambda mu: q(mu @ M.T).sum(axis=-1),
            lambda mu: W3.g_np(mu @ M.T) @ M,
            lambda mu: np.einsum("...k,ki,kj->...ij", W3.dg_np(mu @ M.T), M, M),
            lambda mu: (np.abs(mu @ M.T) < W3.hi).all(axis=-1),
        )
    m = mp.matrix(M.tolist())
    return (
        lambda mu: mp.fsum(q(v) for v in m * mu),
        lambda mu: m.T * mp.matrix([W3.g_mp(v) for v in m * mu]),
        lambda mu: m.T * mp.diag([W3.dg_mp(v) for v in m * mu]) * m,
        lambda mu: all(abs(v) < W3.hi for v in m * mu),
    )


@functools.cache
def _bounded_truth():
    """mu in U (three of them next to the poles) and their w = grad Q(mu), rounded to floats."""
    c = W3.hi
    nus = np.random.default_rng(5).uniform(-0.9 * c, 0.9 * c, (20, 2))
    nus[:3] = c * np.array([[1 - 1e-4, -(1 - 1e-4)], [1 - 1e-5, 1 - 1e-5], [-(1 - 1e-6), -(1 - 1e-6)]])
    mus = np.linalg.solve(M, nus.T).T
    grad = bounded_fns(mpmath)[1]
    with mp.workdps(50):
        return mus, [[float(v) for v in grad(mp.matrix(list(mu)))] for mu in mus]


def test_joint_bounded_mp():
    Q, grad, hess, inside = bounded_fns(mpmath)
    mus, ws = _bounded_truth()
    for mu, w in zip(mus, ws):
        with mp.workdps(50):  # the float w is the exact input; its mu at 50 digits is the reference
            ref = convex_newton_mp(Q, grad, hess, w, inside=inside)
        assert _close_mp(convex_newton_mp(Q, grad, hess, w, inside=inside), list(ref), mpf("1e-25"))
        assert _close_mp(ref, mu, mpf("1e-14"))  # rounding w to floats moves mu that little
    with pytest.raises(DomainError, match=r"mu0 = .* is outside U"):
        convex_newton_mp(Q, grad, hess, [1, 1], mu0=[1, 1], inside=inside)


def test_joint_bounded_np():
    mus, ws = _bounded_truth()
    Q, grad, hess, inside = bounded_fns(np)
    far = [1e6, -1e6]
    got = newton_np(Q, grad, hess, np.array(ws + [far]), inside)
    np.testing.assert_allclose(got[:-1], mus, rtol=1e-12)
    assert inside(got).all()
    np.testing.assert_allclose(grad(got[-1:])[0], far, rtol=1e-12)


def test_joint_near_w0():
    """w within rounding of w0 = grad Q(0): differences of f are pure noise there, the step is not."""
    Q, grad, hess = exp_family_mp()
    fns = exp_family_np()
    w0 = fns[1](np.zeros(2))
    for delta in [0.0, 1e-17, 1e-14, 1e-10, 1e-6]:
        w = w0 + delta * np.array([1.0, -0.7])
        with mp.workdps(50):
            ref = convex_newton_mp(Q, grad, hess, w)
        assert _close_mp(convex_newton_mp(Q, grad, hess, w), list(ref), mpf("1e-28"))
        assert np.abs(newton_np(*fns, w) - [float(v) for v in ref]).max() <= 1e-16


# ---------------------------------------------------------------- joint: all of dom R (issue 6)
#
# The shipped recipe quadratic-generic (literature L6): Q(mu) = sum_k b_k (exp(2 <lam_k, mu>) - 1) with
# b = (529, 961, 841)/8100 and lam_k = (-1, 1), (1, 2), (2, -1); dom R is the open cone between the
# rays (2, -1) and (-1, 1). Points are made forwards in mpmath: mu along the valleys where two terms
# balance (their ratio stays within about e^(+-10)), so that |w| = |grad Q(mu)| runs log-uniformly from
# 1e-100 to 1e100 (and to 1e+-300); w is rounded to floats, and the reference mu at that float w is the
# root of grad Q(mu) = w by Newton at 50 digits from the generating mu (R = <mu, w> - Q(mu), hess R =
# hess Q(mu)^-1 there). Small |w| is reached with the two extreme rays, large |w| with (1, 2) and one of
# them: (2, 3), (-1/3, 2/3) and (3/5, 1/5) solve <lam_i, v> = <lam_j, v> = 1 for those pairs.

QG_LAM = [(-1, 1), (1, 2), (2, -1)]


def _qg_b():
    """b_k at the working precision (exact to it: the reference runs at 50 digits)."""
    return [mpf(529) / 8100, mpf(961) / 8100, mpf(841) / 8100]


_QG_VALLEYS = {"low": [(2, 3)], "high": [(mpf(-1) / 3, mpf(2) / 3), (mpf(3) / 5, mpf(1) / 5)]}


def _qg_terms(mu):
    return [b * mp.exp(2 * (l0 * mu[0] + l1 * mu[1])) for b, (l0, l1) in zip(_qg_b(), QG_LAM)]


def qg_mp():
    """Q, grad Q, hess Q of quadratic-generic in mpmath (at the working precision, for mp.matrix mu)."""

    def Q(mu):
        return mp.fsum(b * mp.expm1(2 * (l0 * mu[0] + l1 * mu[1])) for b, (l0, l1) in zip(_qg_b(), QG_LAM))

    def grad(mu):
        e = _qg_terms(mu)
        return [2 * mp.fsum(ek * lam[i] for ek, lam in zip(e, QG_LAM)) for i in range(2)]

    def hess(mu):
        e = _qg_terms(mu)
        return mp.matrix([[4 * mp.fsum(ek * lam[i] * lam[j] for ek, lam in zip(e, QG_LAM)) for j in range(2)]
                          for i in range(2)])

    return Q, grad, hess


_QG_BF = np.array([529 / 8100, 961 / 8100, 841 / 8100])
_QG_LF = np.array(QG_LAM, dtype=float)


def qg_np():
    """The same in float64, as the exporter writes it (Q with expm1)."""

    def Q(mu):
        return (_QG_BF * np.expm1(2 * mu @ _QG_LF.T)).sum(axis=-1)

    def grad(mu):
        return 2 * (_QG_BF * np.exp(2 * mu @ _QG_LF.T)) @ _QG_LF

    def hess(mu):
        return 4 * np.einsum("...k,ki,kj->...ij", _QG_BF * np.exp(2 * mu @ _QG_LF.T), _QG_LF, _QG_LF)

    return Q, grad, hess


def _qg_w0():
    """w0 = grad Q(0) = (1057/2025, 161/405) exactly, and as the pair (hi, lo) with w0 = hi + lo."""
    with mp.workdps(50):
        w0 = qg_mp()[1]([mpf(0), mpf(0)])
        hi = np.array([float(v) for v in w0])
        return w0, (hi, np.array([float(v - mpf(h)) for v, h in zip(w0, hi)]))


def _newton_ref(grad, hess, w, start):
    """grad Q(mu) = w by plain Newton from a start next to the root (steps of at most 1/2)."""
    mu = mp.matrix([mpf(v) for v in start])
    for _ in range(100):
        step = mp.lu_solve(hess(mu), mp.matrix(grad(mu)) - mp.matrix(w))
        size = max(abs(v) for v in step)
        mu -= step * min(1, 1 / (2 * size)) if size else step
        if size <= mpf(10) ** (5 - mp.dps) * max(1, abs(mu[0]), abs(mu[1])):
            return mu
    raise AssertionError(f"the reference Newton did not converge at w = {w}")


class Truth:
    """Float points w with R, grad R = mu and hess R at them to 50 digits (rounded to floats)."""

    def __init__(self, ws, starts):
        _, grad, hess = qg_mp()
        self.w = np.array(ws)
        mus, Rs, Hs, conds, self.mu_mp = [], [], [], [], []
        with mp.workdps(50):
            for w, start in zip(ws, starts):
                wm = [mpf(v) for v in w]
                mu = _newton_ref(grad, hess, wm, start)
                H = hess(mu)
                self.mu_mp.append(mu)
                mus.append([float(v) for v in mu])
                Rs.append(float(mu[0] * wm[0] + mu[1] * wm[1] - qg_mp()[0](mu)))
                Hs.append([[float(v) for v in row] for row in (H**-1).tolist()])
                eig = mp.eigsy(H, eigvals_only=True)
                conds.append(float(max(eig) / min(eig)))
        self.mu, self.R, self.H, self.cond = (np.array(v) for v in (mus, Rs, Hs, conds))

    def errors(self, R, mu, H):
        """Relative errors: of R to |R|, of mu to ||mu||, of hess R to its largest entry (max norms)."""
        e_R = np.abs(R - self.R) / np.abs(self.R)
        e_mu = np.abs(mu - self.mu).max(axis=-1) / np.abs(self.mu).max(axis=-1)
        e_H = np.abs(H - self.H).max(axis=(-2, -1)) / np.abs(self.H).max(axis=(-2, -1))
        return e_R, e_mu, e_H


def _valley_points(n, seed, lo, hi):
    """(float w, generating mu): log10 |w| uniform in (lo, hi), mu = s v + m with m in [-1, 1]^2."""
    rng = np.random.default_rng(seed)
    ws, mus = [], []
    with mp.workdps(50):
        for e, m, k in zip(rng.uniform(lo, hi, n), rng.uniform(-1, 1, (n, 2)), rng.integers(0, 2, n)):
            vs = _QG_VALLEYS["low" if e < 0 else "high"]
            v = vs[k % len(vs)]
            s = mpf(e) * mp.log(10) / 2
            mu = [s * v[0] + m[0], s * v[1] + m[1]]
            ws.append([float(x) for x in qg_mp()[1](mu)])
            mus.append(mu)
    return ws, mus


@functools.cache
def wide_truth():
    """|w| log-uniform over 1e-100..1e100, half below 1, half above."""
    return Truth(*_valley_points(120, seed=11, lo=-100, hi=100))


@functools.cache
def extreme_truth():
    """|w| from 1e100 to 1e300 and from 1e-300 to 1e-100."""
    w1, m1 = _valley_points(20, seed=12, lo=100, hi=300)
    w2, m2 = _valley_points(20, seed=13, lo=-300, hi=-100)
    return Truth(w1 + w2, m1 + m2)


@functools.cache
def near_truth():
    """w = w0 + delta |w0| u, u a random unit vector, delta log-uniform in 1e-15..1e-3 (then 1e-3..1)."""
    rng = np.random.default_rng(14)
    w0 = _qg_w0()[0]
    ws = []
    with mp.workdps(50):
        for e, th in zip(np.concatenate([rng.uniform(-15, -3, 70), rng.uniform(-3, -0.5, 20)]),
                         rng.uniform(0, 2 * np.pi, 90)):
            d = mpf(10) ** e * abs(w0[0])
            ws.append([float(w0[0] + d * mp.cos(th)), float(w0[1] + d * mp.sin(th))])
    return Truth(ws, [[0, 0]] * len(ws))


# The float64 floor. The solver returns mu to about an ulp where hess Q is well conditioned (to
# about cond(hess Q) eps relatively in general), and R = <mu, w> - Q(mu) is stationary in mu, so R
# and grad R are good to ~1e-15. hess R = hess Q(mu)^-1 from a float mu cannot be better than about
# (cond(hess Q) + 2 |lam|_1 |mu|) eps: each term exp(2 <lam_k, mu>) moves by 2 |lam_k| |delta mu|
# relatively when mu is rounded (|mu| ~ 350 at |w| = 1e-100, ~1000 at 1e-300), and the inverse adds
# cond(hess Q) eps. So hess R is held to 1e-13 where cond(hess Q) <= 1e3 and 1e-100 <= |w| <= 1e100
# (most of the points), and elsewhere to twice that estimate (measured: at most half of it) where it
# exceeds 1e-13. R near w0 is ~|w - w0|^2: only the solver's cancellation-free value reaches 1e-13 there.
TOL = 1e-13
EPS = np.finfo(float).eps


def _check(truth, R, mu, H, strict=True):
    e_R, e_mu, e_H = truth.errors(R, mu, H)
    assert e_R.max() <= TOL, (e_R.max(), truth.w[e_R.argmax()])
    assert e_mu.max() <= TOL, (e_mu.max(), truth.w[e_mu.argmax()])
    floor = 2 * (truth.cond + 6 * np.abs(truth.mu).max(axis=-1)) * EPS
    assert (e_H <= np.maximum(TOL, floor)).all(), truth.w[np.argmax(e_H / np.maximum(TOL, floor))]
    if strict:
        good = truth.cond <= 1e3
        assert good.mean() > 0.8  # the sample is mostly well conditioned
        assert e_H[good].max() <= TOL, (e_H[good].max(), truth.w[good][e_H[good].argmax()])


def test_joint_np_whole_cone():
    """|w| from 1e-100 to 1e100: R, grad R, hess R to 1e-13 (was: 'hess Q is singular' past |w| ~ 1e20,
    1e-6 relative error for |w| < 1e-20). Warnings are errors here: nothing overflows."""
    t = wide_truth()
    Q, grad, hess = qg_np()
    mu = newton_np(Q, grad, hess, t.w)
    _check(t, (mu * t.w).sum(axis=-1) - Q(mu), mu, np.linalg.inv(hess(mu)))
    mu2, R = newton_np(Q, grad, hess, t.w, w0=_qg_w0()[1], value=True)
    _check(t, R, mu2, np.linalg.inv(hess(mu2)))


def test_joint_np_extremes():
    """|w| out to 1e+-300 (hess Q up to ~1e301 at the solution: still finite)."""
    t = extreme_truth()
    Q, grad, hess = qg_np()
    mu = newton_np(Q, grad, hess, t.w)
    _check(t, (mu * t.w).sum(axis=-1) - Q(mu), mu, np.linalg.inv(hess(mu)), strict=False)


def test_joint_np_next_to_w0():
    """w within 1e-15..1e-3 (relative) of w0: f's values cancel there, and grad Q(mu) - w loses
    log10(|w0| / |w - w0|) digits; with w0 to twice float precision, mu and R stay exact to ~1e-15."""
    t = near_truth()
    Q, grad, hess = qg_np()
    # without w0 the solver can only use grad(0), itself rounded: mu is exact relative to |w0|, not to
    # |w - w0| (about eps |w0| / |hess Q(0)| absolutely), and the plain R = <mu, w> - Q(mu) cancels to
    # an absolute eps (|<mu, w>| + |Q(mu)|)
    plain = newton_np(Q, grad, hess, t.w)
    assert np.abs(plain - t.mu).max() <= 8 * EPS
    mu, R = newton_np(Q, grad, hess, t.w, w0=_qg_w0()[1], value=True)
    _check(t, R, mu, np.linalg.inv(hess(mu)))


def test_joint_np_outside_and_edges():
    """Outside the cone at every scale, and on its edges (rays of (2, -1) and (-1, 1)): ValueError."""
    fns = qg_np()
    for w in ([-1e100, -1e100], [1e-100, -1e-100], [-1.0, -0.5], [1e300, -1e300], [-1e-3, 1e-3], [0.0, 0.0],
              [2e-90, -1e-90], [-1e200, 1e200]):
        with pytest.raises(ValueError, match=r"is outside dom R"):
            newton_np(*fns, np.array([[0.3, 0.4], w]))


def test_joint_np_generated_module():
    """The exported quadratic-generic module: grad_R and hess_R as above over 1e-100..1e100 and next to
    w0 (the exporter passes w0 = hi + lo); its R = <mu, w> - Q(mu) (the plan's formula, not the
    solver's value) is exact except next to w0, where it cancels to an absolute eps (|<mu, w>| + |Q|)."""
    src = numpy_module(derived("quadratic-generic"))
    assert "w0=(np.array([" in src
    ns = {}
    exec(compile(src, "quadratic_generic.py", "exec"), ns)
    for t in (wide_truth(), near_truth()):
        R, mu, H = ns["evaluate"](t.w)
        # the magnitude that formula is rounded at: its terms mu_i w_i and b_k expm1(2 <lam_k, mu>)
        terms = np.abs(t.mu * t.w).sum(axis=-1) + (_QG_BF * np.abs(np.expm1(2 * t.mu @ _QG_LF.T))).sum(axis=-1)
        assert (np.abs(R - t.R) <= TOL * np.abs(t.R) + 8 * EPS * terms).all()
        _check(t, t.R, mu, H)


def _mp_rel(got, ref) -> mpf:
    return max(abs(got[i] - ref[i]) for i in range(2)) / max(abs(ref[0]), abs(ref[1]))


def test_joint_mp_whole_cone():
    """The mpmath twin over 1e-300..1e300 at 30 digits (it stopped at f's rounding of |Q| for tiny w, and
    found hess Q singular past |w| ~ 1e50)."""
    Q, grad, hess = qg_mp()
    for t in (wide_truth(), extreme_truth()):
        for k in range(0, len(t.w), 3):
            got = convex_newton_mp(Q, grad, hess, t.w[k])
            assert _mp_rel(got, t.mu_mp[k]) <= mpf("1e-25"), t.w[k]


def test_joint_mp_next_to_w0():
    """At 30 digits next to w0: the residual is taken at twice the precision at the end, so mu is
    exact relative to |mu| (at the working precision alone it would lose log10(|w0| / |w - w0|) digits)."""
    Q, grad, hess = qg_mp()
    t = near_truth()
    for k in range(0, len(t.w), 2):
        got = convex_newton_mp(Q, grad, hess, t.w[k])
        assert _mp_rel(got, t.mu_mp[k]) <= mpf("1e-25"), t.w[k]
    assert _max_abs(convex_newton_mp(Q, grad, hess, _qg_w0()[0])) < mpf("1e-29")  # w0 to 30 digits


# ---------------------------------------------------------------- the source text


def test_source_is_standalone():
    """The solvers use nothing from their module but np (the generated module imports only numpy)."""
    assert solver_source() == NUMPY_SOLVER_SOURCE
    top = symtable.symtable(NUMPY_SOLVER_SOURCE, "<solvers>", "exec")
    assert sorted(t.get_name() for t in top.get_children()) == ["_convex_newton", "_scalar_inverse"]

    def free(table):
        names = {s.get_name() for s in table.get_symbols() if s.is_global()}
        return names.union(*(free(child) for child in table.get_children()))

    assert set().union(*(free(f) for f in top.get_children())) - set(dir(builtins)) == {"np"}


def test_scalar_np_overflow_is_silent():
    """Probing towards infinity overflows exp (and warnings are errors in this module)."""
    s = np.array([1e300, -1e300])
    got = scalar_np(SINH.g_np, SINH.dg_np, s, -np.inf, np.inf)
    for x, v in zip(got, s):
        v = mpf(v)
        nu = mp.log((v + mp.sqrt(v**2 + 4 * mpf(1.5) * mpf(0.4))) / (2 * mpf(1.5))) / 2
        assert abs(x - nu) <= 1e-13 * abs(nu)
