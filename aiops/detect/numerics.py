"""Small numeric helpers (numpy only; scipy is not a dependency)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def erfc(x: FloatArray) -> FloatArray:
    """Complementary error function, |error| < 1.2e-7 (Numerical Recipes' erfcc)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def gauss_tail(z: FloatArray) -> FloatArray:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * erfc(np.asarray(z, dtype=np.float64) / np.sqrt(2.0))
