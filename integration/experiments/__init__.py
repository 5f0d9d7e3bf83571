"""Experiments: the randomized holdouts that give uplift its counterfactual.

``spec`` declares an experiment (and reads policy files of them), ``registry``
stores it and moves it through draft → running ⇄ paused → stopped,
``assignment`` gives units their arms and finds overridden holdouts, and
``guardrails`` keeps valuable accounts out of the holdout and pauses harmful
arms. Submodules are imported directly (``from integration.experiments.assignment
import assign``) so that importing one never loads the others.
"""
