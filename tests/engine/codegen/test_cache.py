"""The stage code cache: keys per stage and path, and its JSON round trip."""

from __future__ import annotations

import json

from codegen_fixtures import dataset

from sela_jupyter.engine.codegen import StageCodeCache, TemplateCoder
from sela_jupyter.engine.insights import STAGES


def test_cache_key_pads_unreached_stages_with_default():
    data = dataset("housing")
    eda, pre = data.insight("eda.data_overview"), data.insight("preprocess.log_target")
    model = data.insight("model.linear")

    assert StageCodeCache.key_for("eda", None, []) == ("default",)
    assert StageCodeCache.key_for("preprocess", pre, [eda]) == (eda.id, pre.id)
    assert StageCodeCache.key_for("model", None, [eda, pre]) == (
        eda.id,
        pre.id,
        "default",
        "default",
    )
    assert StageCodeCache.key_for("model", model, [eda, pre, data.insight("features.ratios")]) == (
        eda.id,
        pre.id,
        "features.ratios",
        "model.linear",
    )


def test_cache_stores_code_per_stage_and_path_and_round_trips_through_json():
    data = dataset("housing")
    coder, cache_ = TemplateCoder(), StageCodeCache()
    path = [data.insight(k) for k in data.base_path[:2]]
    for stage in STAGES:
        insight = path[STAGES.index(stage)] if STAGES.index(stage) < len(path) else None
        earlier = path[: STAGES.index(stage)]
        key = StageCodeCache.key_for(stage, insight, earlier)
        assert cache_.get(stage, key) is None
        cache_.put(stage, key, coder.stage_code(stage, insight, earlier, data.profile, data.task))

    restored = StageCodeCache.from_dict(json.loads(json.dumps(cache_.to_dict())))

    assert len(restored) == len(cache_) == 5
    key = StageCodeCache.key_for("model", None, path)
    assert restored.get("model", key) == cache_.get("model", key)
    assert "TransformedTargetRegressor" in restored.get("model", key)
    assert restored.get("model", ("other",)) is None
