"""An OpenAI-compatible chat client for the LLM proposer and coder: config, retries, accounting.

Any endpoint that speaks the chat-completions protocol works through the ``openai`` package (OpenAI,
Azure OpenAI's ``/openai/v1`` endpoint, DeepSeek, vLLM, Ollama, llama.cpp's server). The key is
read from an environment variable at call time and never stored: a run records the *name* of
the variable (``OPENAI_API_KEY`` unless configured otherwise), the model and the base URL.

:class:`LLMClient` adds what a search needs around the bare client: a request timeout, retries
with exponential backoff on 429, 5xx, timeouts and dropped connections, a cap on concurrent
requests, prompt/completion token counts with a cost estimate per purpose (proposer) and per
node, and a per-run token budget after which it refuses to call (:class:`LLMBudgetExhausted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SelaError, SelaInputError

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "OPENAI_API_KEY"

#: US dollars per million (prompt, completion) tokens; a model not listed costs 0 (a local
#: server). Prefix matches count: ``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``.
#: Override or extend with the ``SELA_LLM_PRICES`` environment variable, e.g.
#: ``SELA_LLM_PRICES='my-model=0.5/1.5,other=1/2'``.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
}

OFF_VALUES = ("", "off", "none", "builtin", "no", "false", "0")


class LLMError(SelaError):
    """An LLM request failed for good (after retries); the message says why and what to check."""


class LLMBudgetExhausted(LLMError):
    """The run's token budget is spent: no more LLM calls are made."""


def parse_prices(text: str) -> dict[str, tuple[float, float]]:
    """``"model=0.5/1.5,other=1/2"`` -> ``{"model": (0.5, 1.5), ...}`` (dollars per 1M tokens)."""
    prices: dict[str, tuple[float, float]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            name, value = item.split("=", 1)
            prompt, completion = value.split("/", 1)
            prices[name.strip()] = (float(prompt), float(completion))
        except ValueError as exc:
            raise SelaInputError(
                f"cannot read the price {item!r}: write MODEL=PROMPT/COMPLETION "
                "in dollars per million tokens, e.g. gpt-4o-mini=0.15/0.6"
            ) from exc
    return prices


def price_for(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    """The (prompt, completion) price of ``model``: exact name first, then the longest prefix."""
    if model in prices:
        return prices[model]
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else (0.0, 0.0)


@dataclass
class TokenUsage:
    """Tokens used and their estimated cost in US dollars."""

    prompt: int = 0
    completion: int = 0
    cost: float = 0.0
    calls: int = 0

    @property
    def total(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt + self.completion

    def add(self, other: TokenUsage) -> None:
        """Add ``other``'s counts to this one."""
        self.prompt += other.prompt
        self.completion += other.completion
        self.cost += other.cost
        self.calls += other.calls

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as in ``run.json`` ``"tokens"`` and a node's ``result.json``."""
        return {**asdict(self), "cost": round(self.cost, 6)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TokenUsage:
        """Inverse of :meth:`to_dict` (missing counts are 0)."""
        data = data or {}
        return cls(
            prompt=int(data.get("prompt", 0)),
            completion=int(data.get("completion", 0)),
            cost=float(data.get("cost", 0.0)),
            calls=int(data.get("calls", 0)),
        )


@dataclass
class LLMConfig:
    """Where and how to ask: model, endpoint, the key's variable name, limits and prices.

    Nothing here is secret: the key itself stays in the environment variable ``api_key_env``.
    """

    model: str = ""
    base_url: str = ""
    api_key_env: str = DEFAULT_KEY_ENV
    timeout: float = 120.0
    max_retries: int = 3
    backoff: float = 1.0  # seconds before the first retry; doubles each time, with jitter
    max_concurrency: int = 4
    token_budget: int | None = None
    temperature: float = 0.2
    max_tokens: int = 4000
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def api_key(self) -> str:
        """The key, read from the environment now (never stored)."""
        return os.environ.get(self.api_key_env or DEFAULT_KEY_ENV, "")

    @property
    def enabled(self) -> bool:
        """True when a model is named and there is a key, or an endpoint that may need none."""
        return bool(self.model) and bool(self.api_key or self.base_url)

    def price(self) -> tuple[float, float]:
        """Dollars per million (prompt, completion) tokens for this model."""
        table = {**DEFAULT_PRICES, **parse_prices(os.environ.get("SELA_LLM_PRICES", ""))}
        table.update(self.prices)
        return price_for(self.model, table)

    def describe(self) -> dict[str, Any]:
        """What a run records about its LLM: model, endpoint, the key's variable name, budget."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "token_budget": self.token_budget,
        }


def resolve_llm(
    llm: str | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> LLMConfig | None:
    """The LLM a new run uses, or ``None`` for the built-in catalog and template coder.

    ``llm`` is a model name, ``"off"`` (no LLM), or ``None`` for the ``SELA_MODEL`` environment
    variable. ``base_url`` defaults to ``OPENAI_BASE_URL``. A model asked for explicitly with no
    key and no endpoint raises :class:`SelaInputError`; one that only comes from the environment
    is quietly left off, so a machine with no key works offline.
    """
    explicit = llm is not None and str(llm).strip().lower() not in ("", "auto")
    if explicit and str(llm).strip().lower() in OFF_VALUES:
        return None
    model = str(llm).strip() if explicit else os.environ.get("SELA_MODEL", "").strip()
    if not model:
        return None
    config = LLMConfig(
        model=model,
        base_url=(base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL", ""))
        or "",
        api_key_env=api_key_env or DEFAULT_KEY_ENV,
    )
    if config.enabled:
        return config
    if explicit:
        raise SelaInputError(
            f"llm={model}: no API key in the environment variable {config.api_key_env} and no "
            "endpoint (OPENAI_BASE_URL or base_url) configured; set one, or use llm=off for the "
            "built-in catalog"
        )
    log.info("SELA_MODEL=%s but no key in %s: using the built-in catalog", model, api_key_env)
    return None


def llm_options(
    llm: str | None = None,
    *,
    insights: str | None = None,
    fallback: str | None = None,
    token_budget: int | str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> dict[str, Any]:
    """The LLM fields of a run's ``SearchOptions`` from what a surface was given.

    ``llm``: a model name, ``"off"``, or ``None`` for ``SELA_MODEL`` (see :func:`resolve_llm`).
    ``insights`` defaults to ``llm`` when an LLM is configured, else ``builtin``.
    """
    config = resolve_llm(llm, base_url=base_url, api_key_env=api_key_env)
    if insights not in (None, "", "llm", "builtin", "both"):
        raise SelaInputError(f"insights must be llm, builtin or both, got {insights!r}")
    if config is None:
        if insights in ("llm", "both"):
            raise SelaInputError(
                f"insights={insights} needs an LLM: give llm=MODEL with a key in "
                f"${api_key_env or DEFAULT_KEY_ENV} (or a base URL), or use insights=builtin"
            )
        return {"insights": "builtin"}
    budget = None
    if token_budget not in (None, ""):
        try:
            budget = int(str(token_budget).replace("_", ""))
        except ValueError:
            raise SelaInputError(
                f"the token budget must be a whole number of tokens, got {token_budget!r}"
            ) from None
    return {
        "llm": config.model,
        "llm_base_url": config.base_url,
        "llm_key_env": config.api_key_env,
        "insights": insights or "llm",
        "fallback": (fallback or "").strip().lower(),
        "token_budget": budget,
    }


@dataclass
class LLMReply:
    """One chat completion: its text and what it cost."""

    text: str
    usage: TokenUsage
    finish_reason: str = ""


class LLMClient:
    """Chat completions with timeouts, retries, a concurrency cap, accounting and a token budget.

    ``usage`` is the run's running total; ``used`` is primed with what earlier sessions of a
    resumed run spent, so the budget spans the whole run.
    """

    def __init__(self, config: LLMConfig, *, used: TokenUsage | None = None) -> None:
        self.config = config
        self.usage = used or TokenUsage()
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None

    def _openai(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                api_key=self.config.api_key or "no-key",  # local servers accept any key
                base_url=self.config.base_url or None,
                timeout=self.config.timeout,
                max_retries=0,  # retries are ours: counted, logged, and cheap to test
            )
        return self._client

    @property
    def budget_left(self) -> int | None:
        """Tokens left in the run's budget (``None``: no budget)."""
        if self.config.token_budget is None:
            return None
        return max(0, self.config.token_budget - self.usage.total)

    def check_budget(self) -> None:
        """Raise :class:`LLMBudgetExhausted` when the run's token budget is spent."""
        if self.budget_left == 0:
            raise LLMBudgetExhausted(
                f"the run's token budget ({self.config.token_budget} tokens) is spent; "
                "the search goes on with cached code and the built-in catalog"
            )

    async def chat(self, messages: list[dict[str, str]], *, purpose: str = "") -> LLMReply:
        """One chat completion for ``messages``; retried on 429, 5xx, timeouts and lost connections.

        Raises :class:`LLMBudgetExhausted` before calling when the budget is spent, and
        :class:`LLMError` (with the endpoint, the model and the last error) when every try fails.
        """
        import openai

        self.check_budget()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(1, self.config.max_concurrency))
        client = self._openai()
        attempts = max(0, self.config.max_retries) + 1
        last: Exception | None = None
        async with self._semaphore:
            for attempt in range(attempts):
                if attempt:
                    delay = self.config.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
                    retry_after = _retry_after(last)
                    await asyncio.sleep(min(60.0, max(delay, retry_after or 0.0)))
                try:
                    started = time.monotonic()
                    response = await client.chat.completions.create(
                        model=self.config.model,
                        messages=messages,
                        temperature=self.config.temperature,
                        max_tokens=self.config.max_tokens,
                    )
                except openai.APIStatusError as exc:
                    last = exc
                    if exc.status_code == 429 or exc.status_code >= 500:
                        log.warning(
                            "LLM %s: HTTP %s (try %d of %d)",
                            purpose,
                            exc.status_code,
                            attempt + 1,
                            attempts,
                        )
                        continue
                    raise LLMError(self._failure(exc)) from None
                except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                    last = exc
                    log.warning("LLM %s: %s (try %d of %d)", purpose, exc, attempt + 1, attempts)
                    continue
                reply = self._reply(response)
                log.info(
                    "LLM %s: %d+%d tokens in %.1f s",
                    purpose,
                    reply.usage.prompt,
                    reply.usage.completion,
                    time.monotonic() - started,
                )
                return reply
        raise LLMError(self._failure(last, tries=attempts)) from None

    def _reply(self, response: Any) -> LLMReply:
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        prompt_price, completion_price = self.config.price()
        cost = (prompt * prompt_price + completion * completion_price) / 1e6
        used = TokenUsage(prompt=prompt, completion=completion, cost=cost, calls=1)
        self.usage.add(used)
        return LLMReply(
            text=text, usage=used, finish_reason=getattr(choice, "finish_reason", "") or ""
        )

    def _failure(self, exc: Exception | None, tries: int = 1) -> str:
        where = self.config.base_url or "https://api.openai.com/v1"
        detail = _describe(exc)
        hint = ""
        if "401" in detail or "403" in detail:
            hint = f"; check the key in ${self.config.api_key_env}"
        elif "404" in detail:
            hint = f"; check the model name {self.config.model!r} and the base URL"
        elif "connect" in detail.lower() or "timed out" in detail.lower():
            hint = "; is the endpoint up and reachable?"
        return (
            f"LLM request to {where} (model {self.config.model}) failed after {tries} "
            f"tr{'y' if tries == 1 else 'ies'}: {detail}{hint}"
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):  # best effort: the loop may be going away
                await client.close()


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no answer"
    status = getattr(exc, "status_code", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"HTTP {status}: {text}"[:300] if status else f"{type(exc).__name__}: {text}"[:300]


def _retry_after(exc: Exception | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None


__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_PRICES",
    "LLMBudgetExhausted",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMReply",
    "TokenUsage",
    "llm_options",
    "parse_prices",
    "price_for",
    "resolve_llm",
]
