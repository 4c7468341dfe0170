"""Every estimator still produces its recorded outputs (tests/golden.py, tests/golden.json).

On the machine that recorded them the outputs are bit-exact; elsewhere a different CPU's
kernels may round differently, so losses and scores are compared to 1e-5 (ALS's scores to
1e-2, ``SCORE_RTOL``) and the lists of items exactly (the small data has no near-ties at the
top ten).
"""

import json

import numpy as np
import pytest

from golden import CASES, PATH, construct, data, outputs

GOLDEN = json.loads(PATH.read_text())
# implicit's ALS solves in float32 through OpenBLAS kernels chosen for the CPU at run time:
# on another CPU its scores move by up to about 0.5 % (its top-10 lists stay the same)
SCORE_RTOL = {"ALS": 1e-2}


@pytest.fixture(scope="module")
def frames():
    return data()


def test_every_case_is_recorded():
    assert set(GOLDEN) == set(CASES)
    for name, (cls, params) in CASES.items():
        assert (GOLDEN[name]["estimator"], GOLDEN[name]["params"]) == (cls, params)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_outputs_match_the_record(name, frames):
    recorded = GOLDEN[name]
    now = outputs(construct(recorded["estimator"], recorded["params"]), *frames)
    expected = recorded["outputs"]
    assert set(now) == set(expected)
    for key in ("loss_curve_", "validation_scores_", "best_epoch_"):
        if key in expected:
            np.testing.assert_allclose(now[key], expected[key], rtol=1e-5, err_msg=key)
    for who in ("known", "new"):
        assert now[who]["user_id"] == expected[who]["user_id"], who
        assert now[who]["item_id"] == expected[who]["item_id"], who
        np.testing.assert_allclose(now[who]["score"], expected[who]["score"],
                                   rtol=SCORE_RTOL.get(name, 1e-5), atol=1e-7, err_msg=who)
