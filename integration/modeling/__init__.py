"""The scoring brain: propensity, uplift, their evaluation metrics and data readiness.

Estimators follow scikit-learn's contract: ``__init__`` stores its keyword
arguments, ``fit`` learns and returns ``self``, learned state ends in ``_``,
randomness comes only from ``random_state``.
"""
