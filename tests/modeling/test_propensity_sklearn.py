"""Conformance with scikit-learn's estimator contract (its own check suite)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from integration.modeling import PropensityModel


# Fewer trees: the contract does not depend on model size.
@parametrize_with_checks([PropensityModel(lgbm_params={"n_estimators": 40})])
def test_propensity_model_follows_the_estimator_contract(estimator, check) -> None:
    check(estimator)
