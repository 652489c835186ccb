"""The stage contract: what generated stage code may assume, and what it must leave behind.

One constant, used by the harness cells (:mod:`.cells`), the LLM coder's prompts and checks
(:mod:`.llm_coder`), the tests, and quoted in ``docs/architecture.md``.
"""

from __future__ import annotations

#: The pipeline stages, in order: the levels of the search tree (depth 1 is ``eda`` ...).
STAGES: tuple[str, ...] = ("eda", "preprocess", "features", "model", "ensemble")

#: What the harness's setup cell defines before any stage runs, and what each one is.
SETUP_VARIABLES: dict[str, str] = {
    "train": "training rows: the feature columns and the target column TARGET",
    "dev": "dev rows, same columns: scored by the harness, never fitted on",
    "test": "the test features (no target) when the run has a test set",
    "TARGET": "the target column's name",
    "TASK": '"regression" | "binary" | "multiclass"',
    "METRIC": "the metric's name (its direction is fixed by the harness)",
    "SEED": "the run's random seed",
    "CLASSES": "classification only: the class labels (models see their codes 0..k-1)",
    "POSITIVE": "binary only: the code of the positive (minority) class",
    "notes": "a dict that earlier stages may fill for later ones",
}

#: What the stages must leave behind for the harness's evaluation cell.
STAGE_OUTPUTS: dict[str, str] = {
    "steps": "a list of (name, transformer) pairs of scikit-learn transformers mapping the raw "
    "feature columns to model inputs",
    "model": "a scikit-learn estimator (a target transform wraps it, e.g. "
    "TransformedTargetRegressor)",
}

#: The contract as the LLM coder is told it (and as ``docs/architecture.md`` quotes it).
CONTRACT = """\
The notebook's setup cell (already run; never redefine it) defines:
- train, dev: pandas DataFrames with the feature columns and the target column TARGET
  (classification targets are already integer class codes 0..k-1)
- test: the test features (no target) when the run has a test set
- TARGET (target column name), TASK ("regression" | "binary" | "multiclass"), METRIC, SEED
- notes: a dict that earlier stages may have filled for later ones
- numpy as np, pandas as pd
Stages run in order: eda, preprocess, features, model, ensemble. A harness cell after them runs
    pipeline = Pipeline(steps + [("model", model)])
    pipeline.fit(train.drop(columns=[TARGET]), train[TARGET])
and scores dev with METRIC. Rules for every stage:
- import what you use; print short findings if useful; add findings to `notes` for later stages
- you may filter or fix *training* rows (train); never change dev's rows or fit anything on dev
- never read test labels or any file other than what the setup loaded
- keep `steps` a list of (name, transformer) pairs of scikit-learn transformers that map the raw
  feature columns (a DataFrame without TARGET) to model inputs"""
