"""The LLM coder: one stage cell from an insight, checked against the stage contract, debugged.

For a node's stage the prompt holds the stage contract (the setup cell's variables and what the
stage must leave behind), the code of the earlier stages on the path, the insight and the profile.
The reply's code runs in the child kernel; when it raises, or leaves the contract unmet (checked by
a hidden cell after it, and statically before it runs), the coder gets the trimmed traceback and
writes the cell again, at most :data:`MAX_ATTEMPTS` replies in all. :class:`StageJob` is that loop
for one cell; the runner calls its :meth:`StageJob.repair` through :attr:`StageCell.repair`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .contract import CONTRACT
from .errors import SimulationError
from .families import model_libraries, prose_list
from .insights import Insight
from .llm import LLMBudgetExhausted, LLMClient, LLMError, TokenUsage
from .llm_insights import profile_prompt
from .task import DataProfile, Task

#: Replies (first code plus fixes) the coder may write for one stage cell.
MAX_ATTEMPTS = 3

TRACEBACK_CHARS = 2500

STAGE_RULES = {
    "eda": "This is the eda stage: analyse train and print what matters (keep output short). "
    "Do not build `steps` or `model` here.",
    "preprocess": "This is the preprocess stage: build `preprocess`, a sklearn ColumnTransformer "
    "over the raw feature columns (imputation, scaling, encoding; drop or handle every "
    'non-numeric column), and set `steps = [("preprocess", preprocess)]`. A target transform '
    "belongs in the model stage (TransformedTargetRegressor).",
    "features": "This is the features stage: extend `steps` (defined by the preprocess stage; "
    'its ("preprocess", ColumnTransformer) step stays) with transformers that add or select '
    "features, e.g. steps.append((name, transformer)) or steps.insert(0, ...) for a step on raw "
    "columns. Custom transformers subclass BaseEstimator and TransformerMixin.",
    "model": "This is the model stage: define `model`, an unfitted scikit-learn-compatible "
    f"estimator for TASK ({prose_list(model_libraries())} are installed). Do not fit it; "
    "the harness does. Keep `steps` as it is.",
    "ensemble": "This is the ensemble stage: define a new unfitted `model` that combines the "
    "current `model` with others (stacking, voting, bagging). Do not fit it; keep `steps`.",
}


def coder_messages(
    stage: str,
    insight: Insight,
    earlier: Sequence[tuple[str, str]],
    profile: DataProfile,
    task: Task,
    description: str = "",
) -> list[dict[str, str]]:
    """The chat messages that ask for ``stage``'s cell implementing ``insight``."""
    previous = (
        "\n\n".join(f"# --- {name} stage ---\n{code.strip()}" for name, code in earlier if code)
        or "(none: this is the first stage cell)"
    )
    user = (
        f"Task description: {description.strip() or 'predict the target column'}\n\n"
        f"{profile_prompt(profile, task)}\n\n{CONTRACT}\n\n{STAGE_RULES[stage]}\n\n"
        f"Code of the earlier stage cells (already run, in this order):\n```python\n{previous}\n"
        f"```\n\nWrite the {stage} stage cell that implements this insight:\n{insight.text}\n\n"
        "Answer with one ```python code block and nothing else."
    )
    return [
        {
            "role": "system",
            "content": "You are an expert Python data scientist writing one Jupyter notebook "
            "cell at a time with "
            f"{prose_list(['pandas', 'numpy', 'scikit-learn', *model_libraries()])}.",
        },
        {"role": "user", "content": user},
    ]


_CODE_BLOCK = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The code in a reply: its fenced blocks joined (a cut-off last fence too), else the text."""
    blocks = [b.strip("\n") for b in _CODE_BLOCK.findall(reply) if b.strip()]
    code = "\n\n".join(blocks) if blocks else reply.strip()
    return code.strip("\n") + "\n"


_FIT_ON_DEV = re.compile(r"\.fit(?:_transform|_predict)?\(\s*dev\b")
_TEST_LABELS = re.compile(r"test_labels|test\s*\[\s*TARGET\s*\]")
_REDEFINES = re.compile(r"^\s*(train|dev)\s*=\s*pd\.read_", re.MULTILINE)


def static_violations(stage: str, code: str) -> list[str]:
    """Contract breaches visible in the source before it runs: syntax errors, test labels,
    fitting on dev, reloading the data."""
    problems = []
    try:
        compile(code, f"<{stage} cell>", "exec")
    except SyntaxError as exc:
        problems.append(f"SyntaxError: {exc.msg} (line {exc.lineno})")
    if _TEST_LABELS.search(code):
        problems.append("the code reads test labels, which stages must never touch")
    if _FIT_ON_DEV.search(code):
        problems.append("the code fits on dev; fit on train only (dev is for scoring)")
    if _REDEFINES.search(code):
        problems.append("the code reloads train or dev; use the frames the setup cell defined")
    return problems


def contract_check_source(stage: str, dev_rows: int) -> str:
    """A hidden cell that raises ``AssertionError`` naming what the stage left unmet."""
    return f"""\
def _sela_contract(_stage, _dev_rows):
    import pandas as _pd
    _ns = get_ipython().user_ns
    _problems = []
    for _name in ("train", "dev"):
        _frame = _ns.get(_name)
        if not isinstance(_frame, _pd.DataFrame) or _ns["TARGET"] not in _frame.columns:
            _problems.append(f"`{{_name}}` must stay a DataFrame with the TARGET column")
    if isinstance(_ns.get("dev"), _pd.DataFrame) and len(_ns["dev"]) != _dev_rows:
        _problems.append("dev's rows were changed; only training rows may be filtered")
    if _stage != "eda":
        _steps = _ns.get("steps")
        if not isinstance(_steps, list) or not all(
            isinstance(_s, tuple) and len(_s) == 2 and hasattr(_s[1], "transform")
            for _s in _steps
        ):
            _problems.append("`steps` must be a list of (name, transformer) pairs")
        elif _stage == "preprocess" and not hasattr(dict(_steps).get("preprocess"), "fit"):
            _problems.append('`steps` must hold a ("preprocess", ColumnTransformer) step')
    if _stage in ("model", "ensemble"):
        _model = _ns.get("model")
        if _model is None or not hasattr(_model, "fit") or not hasattr(_model, "predict"):
            _problems.append("`model` must be an unfitted estimator with fit and predict")
    if _problems:
        raise AssertionError("stage contract unmet: " + "; ".join(_problems))
_sela_contract({stage!r}, {int(dev_rows)})
del _sela_contract
"""


def trim_traceback(text: str, limit: int = TRACEBACK_CHARS) -> str:
    """The end of a traceback (where the error is), at most ``limit`` characters."""
    text = text.strip()
    return text if len(text) <= limit else "...\n" + text[-limit:]


@dataclass
class StageJob:
    """Writing one stage cell: the first reply, then fixes until it works or attempts run out."""

    client: LLMClient
    stage: str
    insight: Insight
    messages: list[dict[str, str]]
    max_attempts: int = MAX_ATTEMPTS
    replies: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    code: str = ""
    log: list[str] = field(default_factory=list)

    async def first(self) -> str:
        """The first code that passes the static checks (or the last reply, when none does)."""
        self.code = await self._ask()
        while (problems := static_violations(self.stage, self.code)) and self._can_retry():
            self.code = await self._fix("; ".join(problems))
        return self.code

    async def repair(self, error: SimulationError) -> str | None:
        """New code after the cell failed with ``error``; ``None`` when out of attempts or budget."""
        if not self._can_retry():
            return None
        detail = trim_traceback(error.traceback or str(error))
        try:
            self.code = await self._fix(f"{error}\n{detail}")
            while (problems := static_violations(self.stage, self.code)) and self._can_retry():
                self.code = await self._fix("; ".join(problems))
        except LLMError as exc:
            self.log.append(f"no fix: {exc}")
            return None
        return self.code

    def _can_retry(self) -> bool:
        if self.replies >= self.max_attempts:
            return False
        try:
            self.client.check_budget()
        except LLMBudgetExhausted:
            return False
        return True

    async def _ask(self) -> str:
        reply = await self.client.chat(self.messages, purpose=f"{self.stage} code")
        self.replies += 1
        self.usage.add(reply.usage)
        self.messages.append({"role": "assistant", "content": reply.text})
        return extract_code(reply.text)

    async def _fix(self, problem: str) -> str:
        self.log.append(f"attempt {self.replies} failed: {problem.splitlines()[0][:200]}")
        self.messages.append(
            {
                "role": "user",
                "content": "Running that cell failed:\n"
                f"```\n{problem}\n```\nFix it. Answer with the whole corrected cell as one "
                "```python code block and nothing else.",
            }
        )
        return await self._ask()


class LLMCoder:
    """Makes :class:`StageJob` s for stage cells of one run (its profile, task and description)."""

    def __init__(
        self, client: LLMClient, profile: DataProfile, task: Task, description: str = ""
    ) -> None:
        self.client = client
        self.profile = profile
        self.task = task
        self.description = description

    def job(self, stage: str, insight: Insight, earlier: Sequence[tuple[str, str]]) -> StageJob:
        """A job writing ``stage``'s cell for ``insight`` after the ``earlier`` (stage, code) cells."""
        messages = coder_messages(
            stage, insight, earlier, self.profile, self.task, self.description
        )
        return StageJob(self.client, stage, insight, messages)
