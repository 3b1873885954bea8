"""Each shipped commuting recipe reproduces its published formula (../shared/literature.md).

Ground truth is the literature's own ψ and ∇R / ∇²R / R, evaluated in mpmath at 30 digits at
w = G(ψ(µ)) for µ across U; the derived potential is compared there (values, not strings).
"""

import mpmath as mp
import sympy as sp
from conftest import derived

TOL = mp.mpf(10) ** -22


def _val(d, name):
    return mp.mpf(sp.N(d.parametrization.defaults[sp.Symbol(name, positive=True)], 40))


def test_hyperbolic_entropy_L1():
    d = derived("hyperbolic-entropy")
    a = _val(d, "alpha")
    num = d.numeric()
    for mu in (-1.3, -0.4, 0.05, 0.7, 1.1):
        mu = mp.mpf(mu)
        u, v = a * mp.e ** (2 * mu), a * mp.e ** (-2 * mu)          # literature ψ
        w = u**2 - v**2
        assert abs(w - 2 * a**2 * mp.sinh(4 * mu)) < TOL            # ∇Q(µ) = 2α² sinh 4µ
        R, g, H = num.evaluate([w])
        assert abs(g[0] - mp.asinh(w / (2 * a**2)) / 4) < TOL
        assert abs(H[0, 0] - 1 / (4 * mp.sqrt(w**2 + 4 * a**4))) < TOL
        R_lit = (w * mp.asinh(w / (2 * a**2)) - mp.sqrt(w**2 + 4 * a**4) + 2 * a**2) / 4
        assert abs(R - R_lit) < TOL
        # Woodworth's published Q_α = α² q(w/α²) with q(z) = 2 − √(4 + z²) + z asinh(z/2) is 4R
        z = w / a**2
        assert abs(4 * R - a**2 * (2 - mp.sqrt(4 + z**2) + z * mp.asinh(z / 2))) < TOL
    assert [(part.lo, part.hi) for part in d.domain()["dom_R"]] == [(-sp.oo, sp.oo)]


def test_azulay_shape_L2():
    d = derived("azulay-shape")
    a, b = _val(d, "a"), _val(d, "b")
    k = 2 * a**2 + 2 * b**2
    num = d.numeric()
    for w in (-3.0, -0.2, 0.0, 0.4, 5.0):
        w = mp.mpf(w)
        R, g, H = num.evaluate([w])
        assert abs(g[0] - mp.asinh(2 * w / k) / 2) < TOL
        assert abs(H[0, 0] - 1 / mp.sqrt(k**2 + 4 * w**2)) < TOL
        assert abs(R - k / 4 * (1 - mp.sqrt(1 + 4 * w**2 / k**2) + 2 * w / k * mp.asinh(2 * w / k))) < TOL


def test_egu_L3():
    d = derived("egu")
    c = _val(d, "c")
    w0 = c**2 / 4
    num = d.numeric()
    for w in (1e-6, 0.1, 0.36, 2.0, 1e5):
        w = mp.mpf(w)
        R, _g, H = num.evaluate([w])
        assert abs(R - (w * mp.log(w / w0) - w + w0)) < TOL * (1 + abs(R))
        assert abs(H[0, 0] - 1 / w) < TOL / w
    assert [(part.lo, part.hi) for part in d.domain()["dom_R"]] == [(0, sp.oo)]


def test_winnow_L3b():
    import mirrorsym

    p = mirrorsym.Parametrization.create(["u**2"], ["u"], {"u": "c"}, parameters={"c": 0.7},
                                         assumptions={"c": ["positive"]})
    d = mirrorsym.derive(p)
    c = mp.mpf("0.7")
    w0 = c**2
    for w in (0.01, 0.49, 3.0):
        w = mp.mpf(w)
        R, _g, H = d.numeric().evaluate([w])
        assert abs(R - (w * mp.log(w / w0) - w + w0) / 4) < TOL
        assert abs(H[0, 0] - 1 / (4 * w)) < TOL


def test_deep_one_sided_L4():
    d = derived("deep-one-sided-3")
    a, L = _val(d, "alpha"), 3
    w0 = a**L
    (part,) = d.domain()["U"]
    assert sp.simplify(part.hi - 1 / (3 * sp.Symbol("alpha", positive=True))) == 0 and part.lo == -sp.oo
    assert [(q.lo, q.hi) for q in d.domain()["dom_R"]] == [(0, sp.oo)]
    num = d.numeric()
    for mu in (-5, -0.5, 0.1, 0.4):
        mu = mp.mpf(mu)
        u = (a ** (2 - L) - L * (L - 2) * mu) ** (-mp.mpf(1) / (L - 2))       # literature ψ
        w = u**L
        _R, g, H = num.evaluate([w])
        assert abs(g[0] - mu) < TOL
        assert abs(g[0] - (w ** (mp.mpf(2) / L - 1) - w0 ** (mp.mpf(2) / L - 1)) / (L * (2 - L))) < TOL
        assert abs(H[0, 0] - w ** (mp.mpf(2) / L - 2) / L**2) < TOL * H[0, 0]


def test_quadratic_separable_L6():
    """Q = ¼ Σ_k c_k² (e^{2⟨λ_k, µ⟩} − 1) with the published P, spectra and x0 (MATH.md §6)."""
    d = derived("quadratic-separable")
    assert d.closed_form
    P = mp.matrix([[1, 2, 2], [2, 1, -2], [2, -2, 1]]) / 3
    x0 = mp.matrix([1, mp.mpf(1) / 3, mp.mpf(1) / 5])
    c = P.T * x0
    lam = [(1, 0), (-1, 0), (0, 1)]
    num = d.numeric()
    for mu in [(0.3, -0.2), (-0.7, 0.5), (0.1, 0.9)]:
        mu = [mp.mpf(m) for m in mu]
        w = [mp.fsum(c[k] ** 2 * lam[k][i] * mp.e ** (2 * (lam[k][0] * mu[0] + lam[k][1] * mu[1])) for k in range(3)) / 2
             for i in range(2)]
        _R, g, H = num.evaluate(w)
        assert max(abs(g[i] - mu[i]) for i in range(2)) < TOL
        HQ = mp.matrix(2, 2)
        for i in range(2):
            for j in range(2):
                HQ[i, j] = mp.fsum(c[k] ** 2 * lam[k][i] * lam[k][j] * mp.e ** (2 * (lam[k][0] * mu[0] + lam[k][1] * mu[1]))
                                   for k in range(3))
        assert mp.mnorm(H - HQ ** -1, 1) < TOL
