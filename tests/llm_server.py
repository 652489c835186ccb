"""A real chat-completions HTTP server on 127.0.0.1 for tests: scripted replies, recorded requests.

The ``openai`` client talks to it like to any OpenAI-compatible endpoint (``base_url`` is
:attr:`ChatServer.url`). Replies come from :attr:`ChatServer.script` first (a queue of
:class:`Reply`), then from the ``responder`` (by default :func:`data_scientist`, which answers
the proposer and the coder of sela-jupyter with sound insights and working stage code).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer: a completion text, or an HTTP error status; optionally late."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    finish_reason: str = "stop"
    headers: dict[str, str] | None = None


Responder = Callable[[dict[str, Any]], "Reply | str"]


class ChatServer:
    """``POST /v1/chat/completions`` on 127.0.0.1 in a thread; ``requests`` holds every body."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder or data_scientist
        self.script: list[Reply | str] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give the client (``.../v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ChatServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (the port then refuses connections)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def user_prompts(self) -> list[str]:
        """The last user message of every recorded request."""
        return [last_user(r) for r in self.requests]

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            scripted = self.script.pop(0) if self.script else None
        answer = scripted if scripted is not None else self.responder(body)
        return Reply(text=answer) if isinstance(answer, str) else answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = server._next(body)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    self._send(
                        reply.status,
                        {"error": {"message": f"scripted {reply.status}", "type": "test"}},
                        reply.headers,
                    )
                    return
                prompt = 1 + sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4
                completion = max(1, len(reply.text) // 4)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", ""),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.text},
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    },
                )

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler


def last_user(body: dict[str, Any]) -> str:
    """The text of the last user message of a request body."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1]["content"] if users else ""


# -- a scripted data scientist -----------------------------------------------------------------

INSIGHTS = {
    "eda": [
        "Print summary statistics of the numeric columns",
        "Count missing values per column and print the worst ones",
        "Print the correlation of each numeric feature with the target",
        "Show the number of distinct levels of every categorical column",
        "Print the target's quantiles and skew",
    ],
    "preprocess": [
        "Median-impute numbers, scale them and one-hot encode the categories",
        "Mean-impute numeric columns and min-max scale them, one-hot the categories",
        "Impute numbers with the median and encode categories as ordinal codes",
        "Robust-scale numeric columns after median imputation and one-hot categories",
        "Impute categories with a constant 'missing' level before one-hot encoding",
    ],
    "features": [
        "Drop near-constant model inputs with a variance threshold",
        "Keep the best 80 percent of inputs by univariate F-test",
        "Append a degree-2 polynomial expansion of the inputs",
        "Append the leading principal components of the inputs",
        "Add spline features of the numeric inputs",
    ],
    "model": [
        "A random forest of 60 trees",
        "Ridge regression (or logistic regression) with default regularisation",
        "Gradient boosting with 80 shallow trees",
        "Extra trees with 60 trees",
        "k-nearest neighbours with k=7",
    ],
    "ensemble": [
        "Bag the chosen model over 3 bootstrap samples",
        "Vote between the chosen model and a linear model",
        "Stack the chosen model with a linear model",
        "Average the chosen model over three seeds",
        "Blend the chosen model with extra trees",
    ],
}

CODE = {
    "eda": "print(train.describe().T.head(10))\nnotes['rows'] = len(train)\n",
    "preprocess": """\
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

preprocess = ColumnTransformer(
    [
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include="number")),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         make_column_selector(dtype_exclude="number")),
    ]
)
steps = [("preprocess", preprocess)]
""",
    "features": """\
from sklearn.feature_selection import VarianceThreshold

steps.append(("variance", VarianceThreshold(1e-6)))
""",
    "model": """\
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

forest = RandomForestRegressor if TASK == "regression" else RandomForestClassifier
model = forest(n_estimators=40, random_state=SEED, n_jobs=1)
""",
    "ensemble": """\
from sklearn.ensemble import BaggingClassifier, BaggingRegressor

bagging = BaggingRegressor if TASK == "regression" else BaggingClassifier
model = bagging(model, n_estimators=3, random_state=SEED)
""",
}


def fenced(code: str) -> str:
    """``code`` as a model writes it: some prose and a python fence."""
    return f"Here is the cell:\n```python\n{code}```\n"


def stage_of(prompt: str) -> str | None:
    """The stage a coder prompt asks for."""
    for stage in CODE:
        if f"Write the {stage} stage cell" in prompt:
            return stage
    return None


def data_scientist(body: dict[str, Any]) -> Reply | str:
    """Answers insight requests with :data:`INSIGHTS` as JSON and code requests with
    :data:`CODE`; an insight containing ``BUGGY`` first gets code with a NameError, fixed when the
    traceback comes back."""
    prompt = last_user(body)
    first = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
    if "Propose at least" in first:
        stages = [s for s in INSIGHTS if f'- "{s}":' in first]
        return "```json\n" + json.dumps({s: INSIGHTS[s] for s in stages}, indent=1) + "\n```"
    stage = stage_of(first)
    if stage is None:
        return "ok"
    if "BUGGY" in first and "Running that cell failed" not in prompt:
        return fenced("print(undefined_name)\n" + CODE[stage])
    if "NOSTEPS" in first and "Running that cell failed" not in prompt:
        return fenced("print('forgot the contract')\n")
    return fenced(CODE[stage])
