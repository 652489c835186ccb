"""The helper transformers and functions generated cells define, tested as the functions they are.

The cells hold a copy of this code (``source_of``), so each helper is also checked to work when
its copied text is executed on its own, with only the imports a template registers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import BaggingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from sela_jupyter.engine.codegen import transformers
from sela_jupyter.engine.codegen.transformers import (
    FrequencyEncoder,
    GroupDeviation,
    QuantileClipper,
    add_crosses,
    add_missing_count,
    add_products,
    add_ratios,
    add_text_stats,
    as_objects,
    as_text,
    signed_log,
    source_of,
    with_seed,
)

HELPERS = [
    QuantileClipper,
    signed_log,
    FrequencyEncoder,
    as_objects,
    as_text,
    add_text_stats,
    add_ratios,
    add_products,
    GroupDeviation,
    add_crosses,
    add_missing_count,
    with_seed,
]


def test_quantile_clipper_clips_to_training_quantiles():
    X = np.column_stack([np.arange(101, dtype=float), np.linspace(-1, 1, 101)])
    X[0, 1] = np.nan

    clipper = QuantileClipper(lower=0.1, upper=0.9).fit(X)
    out = clipper.transform(np.array([[-50.0, 5.0], [50.0, 0.0]]))

    assert out[0, 0] == pytest.approx(10.0) and out[1, 0] == 50.0
    assert out[0, 1] == pytest.approx(np.nanquantile(X[:, 1], 0.9))
    assert clone(clipper).get_params() == {"lower": 0.1, "upper": 0.9}


def test_signed_log_compresses_both_tails_and_keeps_zero():
    values = np.array([-np.e + 1, 0.0, np.e - 1])

    assert signed_log(values) == pytest.approx([-1.0, 0.0, 1.0])


def test_frequency_encoder_gives_training_shares_and_zero_for_unseen():
    train = pd.DataFrame({"a": ["x", "x", "y", None], "b": pd.Categorical(["u", "v", "v", "v"])})

    encoder = FrequencyEncoder().fit(train)
    out = encoder.transform(pd.DataFrame({"a": ["x", "z"], "b": pd.Categorical(["v", "w"])}))

    # Shares are of the rows with a value: "x" is 2 of the 3 non-missing values of "a".
    assert out.tolist() == [[pytest.approx(2 / 3), 0.75], [0.0, 0.0]]


def test_as_objects_turns_extension_dtypes_into_plain_values_with_nan():
    frame = pd.DataFrame(
        {
            "flag": pd.array([True, None, False], dtype="boolean"),
            "grade": pd.Categorical(["a", None, "b"]),
        }
    )

    out = as_objects(frame)

    assert all(dtype == np.dtype(object) for dtype in out.dtypes)
    assert out.iloc[0].tolist() == [True, "a"]
    assert all(isinstance(value, float) and np.isnan(value) for value in out.iloc[1])


def test_as_text_makes_missing_texts_empty():
    assert as_text(pd.Series(["hi", None, 3])).tolist() == ["hi", "", "3"]


def test_add_text_stats_counts_lengths_words_and_character_classes():
    frame = pd.DataFrame({"review": ["Ab 1!", None]})

    out = add_text_stats(frame, ["review"])

    first = out.iloc[0]
    assert first["review_length"] == 5 and first["review_words"] == 2
    assert first["review_digit_share"] == pytest.approx(0.2)
    assert first["review_upper_share"] == pytest.approx(0.2)
    assert first["review_punctuation_share"] == pytest.approx(0.2)
    assert out.iloc[1]["review_length"] == 0 and "review_length" not in frame


def test_add_ratios_gives_missing_values_for_zero_denominators():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 0.0, -1.0], "c": [1.0, 1.0, 1.0]})

    out = add_ratios(frame, ["a", "b", "c"])

    assert {"a_per_b", "a_per_c", "b_per_c"} <= set(out.columns)
    assert out["a_per_b"].tolist()[0] == 0.5 and np.isnan(out["a_per_b"].iloc[1])
    assert out["b_per_c"].tolist() == [2.0, 0.0, -1.0]


def test_add_products_adds_each_pair_once():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [0.5, 0.5]})

    out = add_products(frame, ["a", "b", "c"])

    assert [c for c in out.columns if "_times_" in c] == ["a_times_b", "a_times_c", "b_times_c"]
    assert out["a_times_b"].tolist() == [3.0, 8.0]


def test_group_deviation_measures_gaps_to_training_group_means():
    train = pd.DataFrame({"city": ["x", "x", "y"], "rent": [1.0, 3.0, 10.0]})

    step = GroupDeviation(group="city", columns=["rent"]).fit(train)
    out = step.transform(pd.DataFrame({"city": ["x", "y", "z"], "rent": [4.0, 10.0, 1.0]}))

    gaps = out["rent_minus_city_mean"]
    assert gaps.iloc[:2].tolist() == [2.0, 0.0] and np.isnan(gaps.iloc[2])
    assert clone(step).get_params() == {"group": "city", "columns": ["rent"]}


def test_add_crosses_combines_levels_of_each_pair():
    frame = pd.DataFrame({"a": ["yes", "no"], "b": ["no", None]})

    out = add_crosses(frame, [("a", "b")])

    assert out["a x b"].iloc[0] == "yes & no" and pd.isna(out["a x b"].iloc[1])


def test_add_missing_count_counts_gaps_per_row():
    frame = pd.DataFrame({"a": [1.0, None], "b": [None, None]})

    assert add_missing_count(frame)["missing_count"].tolist() == [1, 2]


def test_with_seed_sets_every_random_state_on_a_copy():
    model = BaggingRegressor(DecisionTreeRegressor(random_state=0), random_state=0)

    seeded = with_seed(model, 7)

    assert seeded.random_state == 7 and seeded.estimator.random_state == 7
    assert model.random_state == 0 and model.estimator.random_state == 0
    unseeded = make_pipeline(StandardScaler(), LinearRegression())
    assert with_seed(unseeded, 7) is not unseeded  # nothing to seed: a plain copy


@pytest.mark.parametrize("helper", HELPERS, ids=lambda helper: helper.__name__)
def test_copied_source_defines_the_helper_on_its_own(helper):
    source = source_of(helper)
    namespace = {
        "np": np,
        "pd": pd,
        "BaseEstimator": BaseEstimator,
        "TransformerMixin": TransformerMixin,
        "clone": clone,
    }

    exec(compile(source, helper.__name__, "exec"), namespace)

    assert source.startswith(("def ", "class ")) and "sela" not in source
    assert namespace[helper.__name__].__doc__ == helper.__doc__


def test_every_helper_is_listed():
    defined = {
        name
        for name, value in vars(transformers).items()
        if getattr(value, "__module__", None) == transformers.__name__ and name != "source_of"
    }

    assert defined == {helper.__name__ for helper in HELPERS}
