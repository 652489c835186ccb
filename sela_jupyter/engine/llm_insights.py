"""The LLM insight proposer: a prompt from the task and profile, forgiving JSON, no near-duplicates.

The proposer sends the free-text task description, the task (type, metric) and the profile (counts,
a column summary and a few rows, never the data) and asks for at least five insights per stage as
JSON. :func:`parse_json_reply` reads what models really send: code fences, prose around the JSON,
trailing commas, a reply cut off mid-way (repaired by closing what is open); when nothing can be
read the proposer asks once more with the parse error. :func:`is_near_duplicate` drops an insight
that says what an earlier one of its stage already says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .families import model_libraries, prose_list
from .insights import STAGES, Insight, InsightPool, is_near_duplicate
from .llm import LLMClient, LLMError, TokenUsage
from .task import DataProfile, Task

#: What each stage's insights are about, as the prompt explains it.
STAGE_GUIDE = {
    "eda": "exploratory analysis whose printed findings guide later stages",
    "preprocess": "imputation, scaling, encoding of categorical columns, row filtering, "
    "target transform",
    "features": "new features: interactions, ratios, date parts, text vectors, selection",
    "model": "the estimator and its key hyperparameters",
    "ensemble": "combining models: stacking, voting, bagging, blending",
}

MIN_PER_STAGE = 5
MAX_PER_STAGE = 8


class ParseError(ValueError):
    """A reply holds no JSON that can be read, even after repair."""


# -- JSON from a model's reply -------------------------------------------------------------------

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


def parse_json_reply(text: str) -> Any:
    """The JSON value in ``text``: fenced or bare, with prose around it, trailing commas
    removed, and a truncated reply closed at its last complete element.

    Raises :class:`ParseError` saying what is wrong when nothing can be read.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    errors = []
    for candidate in candidates:
        start = _first_bracket(candidate)
        if start < 0:
            continue
        body = candidate[start:]
        for attempt in (body, _strip_trailing_commas(body)):
            try:
                value, _ = json.JSONDecoder().raw_decode(attempt)
                return value
            except json.JSONDecodeError as exc:
                errors.append(exc)
        repaired = repair_truncated_json(body)
        if repaired is not None:
            try:
                return json.loads(_strip_trailing_commas(repaired))
            except json.JSONDecodeError as exc:
                errors.append(exc)
    if not errors:
        raise ParseError("the reply holds no JSON object or array")
    raise ParseError(f"the reply's JSON does not parse: {errors[0]}")


def _first_bracket(text: str) -> int:
    positions = [p for p in (text.find("{"), text.find("[")) if p >= 0]
    return min(positions) if positions else -1


def _strip_trailing_commas(text: str) -> str:
    out, in_string, escaped = [], False, False
    for i, ch in enumerate(text):
        if in_string:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_string = False
            out.append(ch)
            continue
        if ch == '"':
            in_string = True
        elif ch == ",":
            rest = text[i + 1 :].lstrip()
            if rest[:1] in ("]", "}"):
                continue
        out.append(ch)
    return "".join(out)


def repair_truncated_json(text: str) -> str | None:
    """Close a JSON text cut off mid-way: drop the unfinished element, close open brackets.

    Returns ``None`` when ``text`` does not start a JSON object or array.
    """
    text = text.strip()
    if not text or text[0] not in "[{":
        return None
    stack: list[str] = []
    in_string = escaped = False
    last_safe = 0  # index just after the last complete value inside a container
    safe_stack: list[str] = []
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if stack and stack[-1] == "[":
                    last_safe, safe_stack = i + 1, list(stack)
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}":
            if not stack:
                break
            stack.pop()
            last_safe, safe_stack = i + 1, list(stack)
            if not stack:
                return text[: i + 1]
    if not last_safe:
        return None
    head = text[:last_safe].rstrip().rstrip(",")
    if head.endswith(":"):
        return None
    closers = "".join("]" if b == "[" else "}" for b in reversed(safe_stack))
    return head + closers


# -- turning JSON into insights ------------------------------------------------------------------

_TEXT_KEYS = ("insight", "text", "description", "idea", "suggestion", "content")


def insights_from_json(value: Any, stages: Sequence[str] = STAGES) -> dict[str, list[str]]:
    """``{stage: [text, ...]}`` from the shapes models send: a mapping of stage to a list of
    strings or objects, a ``{"insights": ...}`` wrapper, or a list of ``{"stage", "insight"}``."""
    out: dict[str, list[str]] = {stage: [] for stage in stages}
    if isinstance(value, dict) and "insights" in value and not set(value) & set(STAGES):
        value = value["insights"]
    if isinstance(value, dict):
        for key, items in value.items():
            stage = _stage_name(str(key))
            if stage in out:
                out[stage].extend(_texts(items if isinstance(items, list) else [items]))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                stage = _stage_name(str(item.get("stage", item.get("stage_name", ""))))
                if stage in out:
                    out[stage].extend(_texts([item]))
    else:
        raise ParseError("expected a JSON object with one list of insights per stage")
    return out


def _stage_name(key: str) -> str:
    key = key.strip().lower().replace(" ", "_")
    aliases = {
        "exploratory_data_analysis": "eda",
        "preprocessing": "preprocess",
        "data_preprocessing": "preprocess",
        "feature_engineering": "features",
        "feature": "features",
        "model_training": "model",
        "modeling": "model",
        "modelling": "model",
        "models": "model",
        "ensembling": "ensemble",
    }
    return aliases.get(key, key)


def _texts(items: Iterable[Any]) -> list[str]:
    texts = []
    for item in items:
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict):
            text = next((str(item[k]) for k in _TEXT_KEYS if item.get(k)), "")
        else:
            continue
        text = " ".join(text.split())
        if 8 <= len(text) <= 600:
            texts.append(text)
    return texts


# -- the proposer --------------------------------------------------------------------------------


def profile_prompt(profile: DataProfile, task: Task, *, max_columns: int = 60) -> str:
    """The profile as the LLM sees it: counts, a column summary and the few rows of its head."""
    lines = [
        f"Task: {task.task_type}, target column {task.target!r}, metric {task.metric} "
        f"({task.direction}).",
        f"Data: {profile.n_rows} rows x {profile.n_features} feature columns.",
        "Column counts: " + ", ".join(f"{v} {k}" for k, v in profile.metadata.items() if v),
        "Target: " + json.dumps(profile.target_summary, default=str)[:600],
        "Columns (name, dtype, kind, missing, unique, examples):",
    ]
    for column in profile.columns[:max_columns]:
        examples = ", ".join(str(e)[:30] for e in column.examples[:3])
        note = f" - {column.note}" if column.note else ""
        lines.append(
            f"- {column.name}: {column.dtype}, {column.kind}, {column.missing} missing, "
            f"{column.unique} unique, e.g. {examples}{note}"
        )
    if len(profile.columns) > max_columns:
        lines.append(f"... and {len(profile.columns) - max_columns} more columns")
    if profile.head:
        lines += ["A few rows:", profile.head[:3000]]
    return "\n".join(lines)


SYSTEM_PROMPT = (
    "You are an expert data scientist planning machine-learning pipelines with "
    f"{prose_list(['scikit-learn', 'pandas', *model_libraries()])}. You answer with JSON only."
)


def proposer_messages(
    profile: DataProfile, task: Task, description: str, stages: Sequence[str]
) -> list[dict[str, str]]:
    """The chat messages that ask for insights for ``stages``."""
    guide = "\n".join(f'- "{s}": {STAGE_GUIDE[s]}' for s in stages)
    example = json.dumps({s: ["...", "..."] for s in stages})
    user = (
        f"Task description: {description.strip() or 'predict the target column as well as possible'}"
        f"\n\n{profile_prompt(profile, task)}\n\n"
        f"Propose at least {MIN_PER_STAGE} distinct, concrete insights for each of these pipeline "
        f"stages, specific to this data (name columns where it helps):\n{guide}\n\n"
        "Each insight is one sentence that a coder can implement as one notebook cell. "
        f"Answer with one JSON object and nothing else, shaped like {example}."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class LLMProposer:
    """Asks an LLM for insights per stage and adds the new, distinct ones to a pool."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.usage = TokenUsage()

    async def propose(
        self,
        profile: DataProfile,
        task: Task,
        *,
        description: str = "",
        stages: Sequence[str] = STAGES,
        pool: InsightPool | None = None,
    ) -> InsightPool:
        """``pool`` (a new one if ``None``) with up to :data:`MAX_PER_STAGE` LLM insights per stage
        added; insights that nearly repeat one already there are dropped.

        Raises :class:`~.llm.LLMError` when the endpoint fails or two replies hold no usable JSON.
        """
        pool = pool if pool is not None else InsightPool()
        messages = proposer_messages(profile, task, description, stages)
        texts = await self._ask(messages, stages)
        for stage in stages:
            kept = [i.text for i in pool.for_stage(stage)]
            added = 0
            for text in texts.get(stage, []):
                if added >= MAX_PER_STAGE or is_near_duplicate(text, kept):
                    continue
                pool.add_text(stage, text, source="llm")
                kept.append(text)
                added += 1
        return pool

    async def _ask(
        self, messages: list[dict[str, str]], stages: Sequence[str]
    ) -> dict[str, list[str]]:
        reply = await self.client.chat(messages, purpose="insights")
        self.usage.add(reply.usage)
        try:
            return _usable(reply.text, stages)
        except ParseError as first:
            retry = [
                *messages,
                {"role": "assistant", "content": reply.text[:4000]},
                {
                    "role": "user",
                    "content": f"That reply could not be used: {first}. Answer again with the "
                    "JSON object only: no prose, no code fences, no trailing commas.",
                },
            ]
            reply = await self.client.chat(retry, purpose="insights (retry)")
            self.usage.add(reply.usage)
            try:
                return _usable(reply.text, stages)
            except ParseError as second:
                raise LLMError(f"the LLM's insights could not be read twice: {second}") from None


def _usable(text: str, stages: Sequence[str]) -> dict[str, list[str]]:
    texts = insights_from_json(parse_json_reply(text), stages)
    if not any(texts.values()):
        raise ParseError(f"no insights for any of the stages {', '.join(stages)}")
    return texts


def to_insights(pool: InsightPool, source: str = "llm") -> list[Insight]:
    """The pool's insights from one source, in stage order."""
    return [i for i in pool if i.source == source]
