"""Turn the insights on a root-to-node path into stage code: the template coder and the code cache.

:class:`TemplateCoder` renders one notebook cell per stage from the built-in catalog
(:mod:`.catalog`), following the stage contract in ``DESIGN.md``: cells run in order after the
harness's setup cell, each imports what it uses, the preprocess cell builds ``preprocess`` and
``steps``, the features cell extends ``steps``, the model cell builds ``model`` and the ensemble
cell builds a new ``model`` from it. Everything the coder can decide from the path and the data
profile is decided here, so the cells hold concrete code (no branching on ``notes``), and the same
inputs always give the same text.

:class:`StageCodeCache` keeps the code per (stage, insight path), so a node never asks a coder
twice for the same stage.
"""

from __future__ import annotations

import io
import re
import textwrap
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pandas as pd

from .catalog import (
    HIGH_CARDINALITY,
    LARGE_DATA_ROWS,
    PREPROCESS_DEFAULTS,
    CatalogEntry,
    applicable_entries,
    entry_for,
)
from .insights import STAGES, Insight, relevance
from .task import CATEGORICAL, DATETIME, ID_LIKE, NUMERIC, TEXT, DataProfile, Task

_LINE = 99  # generated lines stay within this width where the coder controls it
_STDLIB = {"functools", "itertools", "re", "math"}


# -- rendering helpers -------------------------------------------------------------------------


def py_str(value: str) -> str:
    """A Python string literal for ``value``, double-quoted where that needs no escapes."""
    literal = repr(str(value))
    if literal.startswith("'") and '"' not in value:
        literal = '"' + literal[1:-1].replace("\\'", "'") + '"'
    return literal


def py_value(value: Any) -> str:
    """A Python literal for a parameter value (strings, numbers, bools, None, tuples, lists)."""
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, (list, tuple)):
        items = ", ".join(py_value(v) for v in value)
        return (
            f"({items},)"
            if isinstance(value, tuple) and len(value) == 1
            else (f"({items})" if isinstance(value, tuple) else f"[{items}]")
        )
    return repr(value)


def py_list(names: Sequence[str], prefix: str = "", indent: int = 0) -> str:
    """``prefix`` followed by a list literal of ``names``, wrapped to the line width."""
    items = [py_str(n) for n in names]
    one_line = f"{prefix}[{', '.join(items)}]"
    if len(one_line) + indent <= _LINE:
        return one_line
    pad = " " * (indent + 4)
    lines, current = [], ""
    for item in items:
        candidate = f"{current} {item}," if current else f"{item},"
        if current and len(pad) + len(candidate) > _LINE:
            lines.append(pad + current)
            current = f"{item},"
        else:
            current = candidate
    lines.append(pad + current)
    return prefix + "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


def py_call(function: str, args: Sequence[str], prefix: str = "", indent: int = 0) -> str:
    """``prefix + function(args...)`` on one line if it fits, else one argument per line."""
    one_line = f"{prefix}{function}({', '.join(args)})"
    if len(one_line) + indent <= _LINE and "\n" not in one_line:
        return one_line
    pad = " " * (indent + 4)
    body = "\n".join(pad + _indent_continuation(a, indent + 4) + "," for a in args)
    return f"{prefix}{function}(\n{body}\n{' ' * indent})"


def _indent_continuation(text: str, indent: int) -> str:
    """Indent the continuation lines of a multi-line argument by ``indent`` spaces."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(" " * indent + line for line in rest)])


def kwargs(params: Mapping[str, Any]) -> list[str]:
    """``["name=value", ...]`` for a parameter mapping, in its order."""
    return [f"{name}={py_value(value)}" for name, value in params.items()]


class _Cell:
    """Collects the imports and code blocks of one cell and renders them in order."""

    def __init__(self) -> None:
        self._imports: dict[str, set[str]] = {}
        self._plain: set[str] = set()
        self._raw: dict[str, str] = {}
        self.blocks: list[str] = []

    def imports(self, *lines: str) -> _Cell:
        """Register import lines (``import x as y``, ``from x import a, b``, or a raw line)."""
        for line in lines:
            if "#" in line:  # e.g. the experimental enable_* imports, kept verbatim
                self._raw[line.split()[1]] = line
            elif line.startswith("from "):
                module, names = line[5:].split(" import ")
                self._imports.setdefault(module, set()).update(n.strip() for n in names.split(","))
            else:
                self._plain.add(line)
        return self

    def add(self, block: str) -> _Cell:
        """Append a code block (blank-line separated from its neighbours)."""
        if block.strip():
            self.blocks.append(block.strip("\n"))
        return self

    def merge(self, other: _Cell) -> _Cell:
        """Take over another cell's imports and blocks."""
        for module, names in other._imports.items():
            self._imports.setdefault(module, set()).update(names)
        self._plain |= other._plain
        self._raw.update(other._raw)
        self.blocks.extend(other.blocks)
        return self

    def render(self) -> str:
        """The cell's source: imports (stdlib, then third party), a blank line, the code."""
        groups: list[list[str]] = [[], []]
        entries: list[tuple[str, int, str]] = []
        for line in self._plain:
            entries.append((line.split()[1], 0, line))
        for module, line in self._raw.items():
            entries.append((module, 1, line))
        for module, names in self._imports.items():
            ordered = sorted(names, key=_import_name_order)
            line = f"from {module} import {', '.join(ordered)}"
            if len(line) > _LINE:
                line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in ordered) + ")"
            entries.append((module, 1, line))
        for module, _kind, line in sorted(entries, key=lambda e: (e[1], e[0])):
            groups[0 if module.split(".")[0] in _STDLIB else 1].append(line)
        header = "\n\n".join("\n".join(g) for g in groups if g)
        blocks = [header, *self.blocks] if header else list(self.blocks)
        source = blocks[0] if blocks else ""
        for previous, block in pairwise(blocks):
            # PEP 8: two blank lines around top-level function and class definitions.
            gap = "\n\n\n" if _is_definition(previous) or _is_definition(block) else "\n\n"
            source += gap + block
        return "\n".join(reflow_line(line) for line in source.split("\n"))


def reflow_line(line: str, width: int = _LINE) -> str:
    """Split an over-long line at its widest bracket, one element per line (as black would).

    Lines that are not complete statements or elements on their own (or that have no bracket to
    split) come back unchanged.
    """
    if len(line) <= width or line.lstrip().startswith("#"):
        return line
    indent = line[: len(line) - len(line.lstrip())]
    text = line.strip()
    pairs = _bracket_pairs(text)
    if not pairs:
        return line
    start, end, commas = max(pairs, key=lambda p: p[1] - p[0])
    if end - start < 8:
        return line
    cuts = [start + 1, *(c + 1 for c in commas), end]
    items = [text[a:b].strip() for a, b in pairwise(cuts)]
    items = [i.rstrip(",").strip() for i in items if i.strip() not in ("", ",")]
    # A lone element gets no trailing comma: "(x)" is not "(x,)", and "f(x for x in y,)" fails.
    comma = "," if commas else ""
    lines = [indent + text[: start + 1]]
    lines += [reflow_line(f"{indent}    {item}{comma}", width) for item in items]
    lines.append(indent + text[end:])
    return "\n".join(lines)


def _bracket_pairs(text: str) -> list[tuple[int, int, list[int]]]:
    """Outermost splittable bracket pairs of ``text``: (open, close, top-level comma offsets).

    Subscripts (``frame[...]``) are not offered, and anything inside strings, f-strings
    included, is ignored. Returns ``[]`` when ``text`` does not tokenize on its own.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    pairs: list[tuple[int, int, list[int]]] = []
    stack: list[tuple[int, bool, list[int]]] = []
    fstring_depth = 0
    previous: tokenize.TokenInfo | None = None
    for token in tokens:
        name = tokenize.tok_name[token.type]
        if name == "FSTRING_START":
            fstring_depth += 1
        elif name == "FSTRING_END":
            fstring_depth -= 1
        elif token.type == tokenize.OP and fstring_depth == 0:
            column = token.start[1]
            if token.string in "([{":
                subscript = (
                    token.string == "["
                    and previous is not None
                    and (previous.type == tokenize.NAME or previous.string in (")", "]"))
                )
                stack.append((column, not subscript, []))
            elif token.string in ")]}" and stack:
                open_column, splittable, commas = stack.pop()
                if not stack and splittable:
                    pairs.append((open_column, column, commas))
            elif token.string == "," and len(stack) == 1:
                stack[0][2].append(column)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = token
    return pairs


def _is_definition(block: str) -> bool:
    return block.lstrip().startswith(("def ", "class ", "@"))


def _import_name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def _is_numeric_dtype_name(dtype: str) -> bool:
    try:
        return bool(pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype)))
    except (TypeError, ValueError):
        return False


def _regex_escape(text: str) -> str:
    """Escape regex metacharacters only (``re.escape`` also escapes spaces and the like)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _id_exclusion_pattern(names: Sequence[str]) -> str:
    """A regex matching every column name except ``names`` (for make_column_selector)."""
    alternatives = "|".join(_regex_escape(n) for n in names)
    return f"^(?!(?:{alternatives})$)"


def _regex_literal(pattern: str) -> str:
    raw_safe = pattern.isprintable() and '"' not in pattern and not pattern.endswith("\\")
    if "\\" in pattern and raw_safe:
        return f'r"{pattern}"'
    return py_str(pattern)


# -- what the coder knows about a path ---------------------------------------------------------


@dataclass
class _Context:
    """The profile, task and decisions of the earlier stages on the path."""

    profile: DataProfile
    task: Task
    preprocess: dict[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] | None = None
    model_key: str | None = None

    @classmethod
    def build(cls, profile: DataProfile, task: Task, path: Sequence[Insight]) -> _Context:
        context = cls(profile, task, dict(PREPROCESS_DEFAULTS))
        for insight in path:
            entry = _builtin_entry(insight)
            if entry is None:
                continue  # another coder wrote that stage; its contract variables are all we use
            if entry.stage == "preprocess":
                context.preprocess.update(entry.spec)
            elif entry.stage == "model":
                context.model, context.model_key = entry.spec, entry.key
        return context

    # column lists -------------------------------------------------------------------------

    @property
    def regression(self) -> bool:
        return self.task.task_type == "regression"

    @property
    def numeric(self) -> list[str]:
        return self.profile.names(NUMERIC)

    @property
    def informative_numeric(self) -> list[str]:
        """Numeric columns with at least one value (all-missing columns carry nothing)."""
        return [
            c.name
            for c in self.profile.columns
            if c.kind == NUMERIC and c.missing < self.profile.n_rows
        ]

    @property
    def categorical(self) -> list[str]:
        return self.profile.names(CATEGORICAL)

    @property
    def text(self) -> list[str]:
        return self.profile.names(TEXT)

    @property
    def dates(self) -> list[str]:
        return self.profile.names(DATETIME)

    @property
    def numeric_ids(self) -> list[str]:
        return [
            c.name
            for c in self.profile.columns
            if c.kind == ID_LIKE and _is_numeric_dtype_name(c.dtype)
        ]

    @property
    def n_inputs(self) -> int:
        return len(self.numeric) + len(self.categorical)

    @property
    def train_rows(self) -> int:
        """A lower bound on the training rows (60% of the labelled rows, less 1% filtered)."""
        return max(1, int(self.profile.n_rows * 0.6 * 0.99))

    @property
    def target_transform(self) -> str | None:
        return self.preprocess.get("target_transform") if self.regression else None

    # task-dependent names -----------------------------------------------------------------

    def estimator(self, regression: str, classification: str) -> str:
        return regression if self.regression else classification

    @property
    def mutual_info(self) -> str:
        return self.estimator("mutual_info_regression", "mutual_info_classif")

    @property
    def target_type(self) -> str:
        return {"regression": "continuous"}.get(self.task.task_type, self.task.task_type)

    @property
    def model_family(self) -> str:
        return (self.model or {}).get("family", DEFAULT_MODEL["family"])


#: Mutual information is estimated on at most this many training rows (its kNN estimator is slow).
MI_SAMPLE_ROWS = 2000


def _mi_rows(ctx: _Context, cell: _Cell) -> str:
    """The frame to estimate mutual information on: ``train``, or a seeded sample of it."""
    if ctx.train_rows <= MI_SAMPLE_ROWS:
        return "train"
    cell.add(
        "# Mutual information is estimated on a sample of the training rows to stay fast.\n"
        f"sample = train.sample(n={MI_SAMPLE_ROWS}, random_state=SEED)"
    )
    return "sample"


def _builtin_entry(insight: Insight) -> CatalogEntry | None:
    if insight.source != "builtin":
        return None
    try:
        return entry_for(insight.id)
    except KeyError:
        return None


# -- eda ---------------------------------------------------------------------------------------


def _eda_default(ctx: _Context) -> _Cell:
    cell = _Cell()
    cell.add(
        'print(f"train: {len(train)} rows, dev: {len(dev)} rows, '
        '{train.shape[1] - 1} feature columns")'
    )
    if ctx.regression:
        cell.add(
            "print(train[TARGET].describe().round(3).to_string())\n"
            'notes["target_skew"] = float(train[TARGET].skew())'
        )
    else:
        cell.add(
            "class_shares = train[TARGET].value_counts(normalize=True).sort_index()\n"
            "class_shares.index = [CLASSES[code] for code in class_shares.index]\n"
            'print("class shares:", class_shares.round(3).to_dict())\n'
            'notes["class_shares"] = {str(k): float(v) for k, v in class_shares.items()}'
        )
    cell.add(
        "missing_share = train.drop(columns=[TARGET]).isna().mean()\n"
        "missing_share = missing_share[missing_share > 0].sort_values(ascending=False)\n"
        'print("missing values:", "none" if missing_share.empty else '
        "missing_share.round(3).to_dict())"
    )
    return cell


def _eda_data_overview(ctx: _Context) -> _Cell:
    kinds = {
        "numeric": ctx.numeric,
        "categorical": ctx.categorical,
        "text": ctx.text,
        "datetime": ctx.dates,
        "id-like (not used)": ctx.profile.names(ID_LIKE),
    }
    kind_lines = [
        "    " + py_list(cols, prefix=f"{py_str(k)}: ", indent=4) + ","
        for k, cols in kinds.items()
        if cols
    ]
    cell = _Cell()
    cell.add("features = train.drop(columns=[TARGET])")
    cell.add(
        "column_kinds = {\n" + "\n".join(kind_lines) + "\n}\n"
        "for kind, columns in column_kinds.items():\n"
        '    shown = ", ".join(map(str, columns[:10])) + (" ..." if len(columns) > 10 else "")\n'
        '    print(f"{kind} ({len(columns)}): {shown}")'
    )
    cell.add(
        "constant_columns = [c for c in features.columns if features[c].nunique(dropna=False) <= 1]\n"
        "duplicate_rows = int(train.duplicated().sum())\n"
        "# Rows with identical features but different targets cap what any model can reach.\n"
        "conflicting_rows = int(features.duplicated(keep=False).sum() - "
        "train.duplicated(keep=False).sum())\n"
        'print(f"train: {len(train)} rows; dev: {len(dev)} rows")\n'
        "print(f\"constant columns: {constant_columns or 'none'}\")\n"
        'print(f"duplicate training rows: {duplicate_rows}")\n'
        'print(f"rows whose duplicated features disagree on the target: {conflicting_rows}")'
    )
    cell.add(
        'notes["constant_columns"] = constant_columns\nnotes["duplicate_rows"] = duplicate_rows'
    )
    return cell


def _eda_target_distribution(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import numpy as np")
    log_line = ""
    if ctx.profile.target_summary.get("min", -1) >= 0:
        log_line = '\nprint(f"skew after log1p: {np.log1p(target).skew():.2f}")'
    cell.add(
        "target = train[TARGET]\n"
        "print(target.describe(percentiles=[0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).round(3)"
        ".to_string())\n"
        "q1, q3 = target.quantile([0.25, 0.75])\n"
        "extreme = (target < q1 - 3 * (q3 - q1)) | (target > q3 + 3 * (q3 - q1))\n"
        'print(f"skew {target.skew():.2f}; {extreme.mean():.1%} of rows beyond 3 IQR from the '
        'quartiles")' + log_line
    )
    cell.add(
        'notes["target_skew"] = float(target.skew())\n'
        'notes["target_extreme_share"] = float(extreme.mean())\n'
        'notes["target_summary"] = target.describe().round(6).to_dict()'
    )
    return cell


def _eda_class_balance(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import pandas as pd")
    cell.add(
        "counts = train[TARGET].value_counts().sort_index()\n"
        "balance = pd.DataFrame(\n"
        "    {\n"
        '        "class": [CLASSES[code] for code in counts.index],\n'
        '        "rows": counts.to_numpy(),\n'
        '        "share": (counts / counts.sum()).round(3).to_numpy(),\n'
        "    }\n"
        ")\n"
        "print(balance.to_string(index=False))\n"
        'print(f"imbalance ratio (largest / smallest class): {counts.max() / counts.min():.1f}")\n'
        'print(f"always predicting {CLASSES[counts.idxmax()]!r}: accuracy '
        '{counts.max() / counts.sum():.3f}")'
    )
    if ctx.task.task_type == "binary":
        cell.add(
            "positive_share = counts[POSITIVE] / counts.sum()\n"
            "positive_f1 = 2 * positive_share / (1 + positive_share)\n"
            'print(f"always predicting the positive class {CLASSES[POSITIVE]!r}: '
            'F1 {positive_f1:.3f}")'
        )
    cell.add(
        'notes["class_counts"] = {str(CLASSES[code]): int(n) for code, n in counts.items()}\n'
        'notes["imbalance_ratio"] = float(counts.max() / counts.min())'
    )
    return cell


def _eda_target_correlations(ctx: _Context) -> _Cell:
    cell = _Cell()
    cell.add(py_list(ctx.informative_numeric or ctx.numeric, prefix="numeric_columns = "))
    if ctx.task.task_type == "multiclass":
        cell.imports("import pandas as pd", "from sklearn.feature_selection import f_classif")
        cell.add(
            "numeric = train[numeric_columns].astype(float)\n"
            "filled = numeric.fillna(numeric.median())\n"
            "f_scores, p_values = f_classif(filled, train[TARGET])\n"
            'ranking = pd.DataFrame({"F": f_scores, "p": p_values}, index=numeric_columns)\n'
            'ranking = ranking.sort_values("F", ascending=False)\n'
            'print("ANOVA F of each numeric feature across the classes:")\n'
            "print(ranking.head(15).round(4).to_string())\n"
            "class_means = train.groupby(TARGET)[list(ranking.index[:5])].mean()\n"
            "class_means.index = [CLASSES[code] for code in class_means.index]\n"
            'print("\\nclass means of the top features:")\n'
            "print(class_means.round(3).to_string())\n"
            'notes["target_correlations"] = ranking["F"].round(4).to_dict()'
        )
    else:
        cell.add(
            'correlations = train[numeric_columns].corrwith(train[TARGET], method="spearman")\n'
            "ranking = correlations.reindex(correlations.abs().sort_values(ascending=False).index)\n"
            'print(f"Spearman correlation with {TARGET}:")\n'
            "print(ranking.head(15).round(3).to_string())\n"
            'notes["target_correlations"] = ranking.round(4).to_dict()'
        )
    return cell


def _eda_mutual_information(ctx: _Context) -> _Cell:
    cell = _Cell().imports(
        "import pandas as pd", f"from sklearn.feature_selection import {ctx.mutual_info}"
    )
    numeric, categorical = ctx.informative_numeric, ctx.categorical
    lines = []
    if numeric:
        lines.append(py_list(numeric, prefix="numeric_columns = "))
    if categorical:
        lines.append(py_list(categorical, prefix="categorical_columns = "))
    cell.add("\n".join(lines))
    rows = _mi_rows(ctx, cell)
    body = [
        f"inputs = {rows}["
        + " + ".join(
            n
            for n, cols in (("numeric_columns", numeric), ("categorical_columns", categorical))
            if cols
        )
        + "].copy()"
    ]
    if numeric:
        body.append(
            "numeric = inputs[numeric_columns].astype(float)\n"
            "inputs[numeric_columns] = numeric.fillna(numeric.median())"
        )
    if categorical:
        body.append(
            "for column in categorical_columns:\n"
            '    inputs[column] = inputs[column].astype("category").cat.codes  # missing -> -1'
        )
    discrete = (
        "[column in categorical_columns for column in inputs.columns]" if categorical else "False"
    )
    body.append(
        f"scores = {ctx.mutual_info}(inputs, {rows}[TARGET], discrete_features={discrete}, "
        "random_state=SEED)\n"
        "ranking = pd.Series(scores, index=inputs.columns).sort_values(ascending=False)\n"
        'print(f"mutual information with {TARGET} (nats):")\n'
        "print(ranking.head(20).round(4).to_string())\n"
        'print("features with no detectable information:", list(ranking.index[ranking <= 0]))\n'
        'notes["mutual_information"] = ranking.round(4).to_dict()'
    )
    cell.add("\n".join(body))
    return cell


def _eda_skew_outliers(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.numeric, prefix="numeric_columns = "))
    cell.add(
        "numeric = train[numeric_columns]\n"
        "q1, q3 = numeric.quantile(0.25), numeric.quantile(0.75)\n"
        "iqr = q3 - q1\n"
        "outside = ((numeric < q1 - 1.5 * iqr) | (numeric > q3 + 1.5 * iqr)).mean()\n"
        "report = pd.DataFrame(\n"
        "    {\n"
        '        "skew": numeric.skew(),\n'
        '        "kurtosis": numeric.kurt(),\n'
        '        "outlier_share": outside,\n'
        '        "min": numeric.min(),\n'
        '        "max": numeric.max(),\n'
        "    }\n"
        ').sort_values("skew", key=abs, ascending=False)\n'
        "print(report.head(20).round(3).to_string())\n"
        'notes["skewed_features"] = list(report.index[report["skew"].abs() > 1])\n'
        'print("skewed (|skew| > 1):", notes["skewed_features"])'
    )
    return cell


def _eda_feature_redundancy(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import numpy as np")
    cell.add(py_list(ctx.numeric, prefix="numeric_columns = "))
    cell.add(
        "correlation = train[numeric_columns].corr().abs()\n"
        "upper = correlation.where(np.triu(np.ones(correlation.shape, dtype=bool), k=1))\n"
        "pairs = upper.stack()\n"
        "pairs = pairs[pairs > 0.9].sort_values(ascending=False)\n"
        'print(f"{len(pairs)} numeric feature pairs with |r| > 0.9")\n'
        "print(pairs.head(20).round(3).to_string())\n"
        'notes["collinear_pairs"] = [[str(a), str(b)] for a, b in pairs.index]'
    )
    return cell


def _eda_missing_report(ctx: _Context) -> _Cell:
    cell = _Cell()
    if ctx.regression:
        outcome, label = "train[TARGET]", "mean target"
    elif ctx.task.task_type == "binary":
        outcome, label = "train[TARGET] == POSITIVE", "positive rate"
    else:
        outcome, label = "train[TARGET] == train[TARGET].mode()[0]", "majority-class share"
    cell.add(
        "missing_share = train.drop(columns=[TARGET]).isna().mean()\n"
        "missing_share = missing_share[missing_share > 0].sort_values(ascending=False)\n"
        'print("share of missing values per column:")\n'
        "print(missing_share.round(3).to_string())\n"
        'print(f"rows with any missing value: {train.isna().any(axis=1).mean():.1%}")'
    )
    cell.add(
        "# Informative missingness favours a missing-value indicator over plain imputation.\n"
        f"outcome = {outcome}\n"
        "for column in missing_share.index[:15]:\n"
        "    is_missing = train[column].isna()\n"
        "    print(\n"
        f'        f"{{column}}: {label} {{outcome[is_missing].mean():.3f}} when missing, "\n'
        '        f"{outcome[~is_missing].mean():.3f} when present"\n'
        "    )\n"
        'notes["missing_share"] = missing_share.round(4).to_dict()'
    )
    return cell


def _eda_cardinality_report(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.categorical, prefix="categorical_columns = "))
    cell.add(
        "cardinality = pd.DataFrame(\n"
        "    {\n"
        '        "levels": [train[c].nunique() for c in categorical_columns],\n'
        '        "rare_levels": [\n'
        "            int((train[c].value_counts() < 0.01 * len(train)).sum()) "
        "for c in categorical_columns\n"
        "        ],\n"
        '        "missing": [int(train[c].isna().sum()) for c in categorical_columns],\n'
        "    },\n"
        "    index=categorical_columns,\n"
        ').sort_values("levels", ascending=False)\n'
        "print(cardinality.to_string())\n"
        f'notes["high_cardinality"] = list(cardinality.index[cardinality["levels"] > '
        f"{HIGH_CARDINALITY}])"
    )
    if ctx.regression:
        per_level = 'train.groupby(column, observed=True)[TARGET].agg(["mean", "count"])'
        title = "mean target"
    elif ctx.task.task_type == "binary":
        per_level = (
            "(train[TARGET] == POSITIVE).groupby(train[column], observed=True)"
            '.agg(["mean", "count"])'
        )
        title = "positive rate"
    else:
        per_level = 'pd.crosstab(train[column], train[TARGET], normalize="index")'
        title = "class shares"
    cell.add(
        "for column in categorical_columns[:6]:\n"
        f'    print(f"\\n{title} by {{column}}:")\n'
        f"    print({per_level}.round(3).head(12).to_string())"
    )
    return cell


def _eda_text_report(ctx: _Context) -> _Cell:
    cell = _Cell()
    cell.add(py_list(ctx.text, prefix="text_columns = "))
    cell.add(
        "for column in text_columns:\n"
        '    texts = train[column].fillna("").astype(str)\n'
        '    words = texts.str.lower().str.findall(r"\\w+")\n'
        "    vocabulary = words.explode().value_counts()\n"
        '    empty_share = (texts == "").mean()\n'
        "    print(\n"
        '        f"{column}: median {texts.str.len().median():.0f} characters, "\n'
        '        f"{words.str.len().median():.0f} words, vocabulary {len(vocabulary)}, "\n'
        '        f"{empty_share:.1%} empty"\n'
        "    )\n"
        '    print("  most frequent words:", ", ".join(vocabulary.index[:15].astype(str)))\n'
        '    notes[f"text_vocabulary_{column}"] = int(len(vocabulary))'
    )
    return cell


def _eda_datetime_report(ctx: _Context) -> _Cell:
    cell = _Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.dates, prefix="date_columns = "))
    if ctx.regression:
        outcome = "train[TARGET]"
    elif ctx.task.task_type == "binary":
        outcome = "train[TARGET] == POSITIVE"
    else:
        outcome = "train[TARGET] == train[TARGET].mode()[0]"
    cell.add(
        "for column in date_columns:\n"
        '    dates = pd.to_datetime(train[column], errors="coerce", format="mixed", utc=True)\n'
        '    print(f"{column}: {dates.min()} .. {dates.max()}, {dates.notna().mean():.1%} parsed")\n'
        "    period = dates.dt.year if dates.dt.year.nunique() > 1 else dates.dt.month\n"
        f"    trend = ({outcome}).groupby(period).mean()\n"
        '    print(f"  {TARGET} (mean) over time:", trend.round(3).to_dict())\n'
        '    notes[f"date_range_{column}"] = [str(dates.min()), str(dates.max())]'
    )
    return cell


def _eda_quick_baselines(ctx: _Context) -> _Cell:
    cell = _Cell().imports(
        "from sklearn.compose import ColumnTransformer",
        "from sklearn.impute import SimpleImputer",
        "from sklearn.model_selection import cross_val_score",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    branches = []
    lists = []
    if ctx.numeric:
        lists.append(py_list(ctx.numeric, prefix="numeric_columns = "))
        branches.append('("numeric", SimpleImputer(strategy="median"), numeric_columns)')
    categorical = None
    if ctx.categorical:
        lists.append(py_list(ctx.categorical, prefix="categorical_columns = "))
        categorical = _categorical_pipeline(ctx, cell, "onehot")
        branches.append('("categorical", categorical_pipeline, categorical_columns)')
    cell.add("\n".join(lists))
    if categorical:
        cell.add(f"categorical_pipeline = {categorical}")
    if ctx.regression:
        cell.imports(
            "import numpy as np",
            "from sklearn.ensemble import HistGradientBoostingRegressor",
            "from sklearn.linear_model import RidgeCV",
        )
        linear = "RidgeCV(alphas=np.logspace(-3, 3, 13))"
        booster = "HistGradientBoostingRegressor(random_state=SEED)"
        scoring = "r2"
    else:
        cell.imports(
            "from sklearn.ensemble import HistGradientBoostingClassifier",
            "from sklearn.linear_model import LogisticRegression",
        )
        linear = "LogisticRegression(max_iter=2000)"
        booster = "HistGradientBoostingClassifier(random_state=SEED)"
        scoring = "balanced_accuracy"
    cell.add(
        "baseline_inputs = ColumnTransformer(\n    [\n"
        + "".join(f"        {b},\n" for b in branches)
        + "    ]\n)\n"
        "baselines = {\n"
        f'    "linear": make_pipeline(baseline_inputs, StandardScaler(), {linear}),\n'
        f'    "gradient boosting": make_pipeline(baseline_inputs, {booster}),\n'
        "}\n"
        "X, y = train.drop(columns=[TARGET]), train[TARGET]\n"
        "for name, baseline in baselines.items():\n"
        f'    scores = cross_val_score(baseline, X, y, cv=3, scoring="{scoring}")\n'
        f'    print(f"{{name:>17}}: {scoring} {{scores.mean():.3f}} +/- {{scores.std():.3f}}")\n'
        f'    notes[f"baseline_{scoring}_{{name}}"] = float(scores.mean())'
    )
    return cell


_EDA_RENDERERS = {
    "data_overview": _eda_data_overview,
    "target_distribution": _eda_target_distribution,
    "class_balance": _eda_class_balance,
    "target_correlations": _eda_target_correlations,
    "mutual_information": _eda_mutual_information,
    "skew_outliers": _eda_skew_outliers,
    "feature_redundancy": _eda_feature_redundancy,
    "missing_report": _eda_missing_report,
    "cardinality_report": _eda_cardinality_report,
    "text_report": _eda_text_report,
    "datetime_report": _eda_datetime_report,
    "quick_baselines": _eda_quick_baselines,
}


# -- preprocess --------------------------------------------------------------------------------

_WINSORIZER = '''
class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip each column to its [lower, upper] quantiles, learned on the training rows."""

    def __init__(self, lower=0.01, upper=0.99):
        self.lower = lower
        self.upper = upper

    def fit(self, X, y=None):
        self.low_, self.high_ = np.nanquantile(np.asarray(X, dtype=float), [self.lower, self.upper], axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)
'''

_SIGNED_LOG = '''
def signed_log(values):
    """sign(x) * log1p(|x|): compresses both tails and keeps zero at zero."""
    return np.sign(values) * np.log1p(np.abs(values))
'''

_FREQUENCY_ENCODER = '''
class FrequencyEncoder(TransformerMixin, BaseEstimator):
    """Replace each category by its share of the training rows (unseen categories get 0)."""

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        self.frequencies_ = [X[c].astype(object).value_counts(normalize=True) for c in X.columns]
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        encoded = [
            X[c].astype(object).map(frequencies).astype(float).fillna(0.0)
            for c, frequencies in zip(X.columns, self.frequencies_, strict=True)
        ]
        return np.column_stack(encoded)
'''


def _numeric_branch(ctx: _Context, cell: _Cell) -> str:
    """Render the numeric pipeline's definition; return the name of its variable."""
    spec = ctx.preprocess
    steps: list[str] = []
    impute = spec["numeric_impute"]
    indicator = ", add_indicator=True" if spec["missing_indicator"] else ""
    if impute == "knn":
        cell.imports(
            "from sklearn.impute import KNNImputer",
            "from sklearn.preprocessing import StandardScaler",
        )
        steps += ["StandardScaler()", "KNNImputer(n_neighbors=5)"]
    elif impute == "iterative":
        cell.imports(
            "from sklearn.experimental import enable_iterative_imputer  # noqa: F401",
            "from sklearn.impute import IterativeImputer",
        )
        steps.append("IterativeImputer(max_iter=10, random_state=SEED)")
    else:
        cell.imports("from sklearn.impute import SimpleImputer")
        steps.append(f'SimpleImputer(strategy="median"{indicator})')
    transform = spec["numeric_transform"]
    if transform == "standard" and impute != "knn":
        cell.imports("from sklearn.preprocessing import StandardScaler")
        steps.append("StandardScaler()")
    elif transform == "quantile":
        cell.imports("from sklearn.preprocessing import QuantileTransformer")
        steps.append(
            py_call(
                "QuantileTransformer",
                [
                    'output_distribution="normal"',
                    "n_quantiles=min(1000, len(train))",
                    "random_state=SEED",
                ],
            )
        )
    elif transform == "power":
        cell.imports("from sklearn.preprocessing import PowerTransformer")
        steps.append('PowerTransformer(method="yeo-johnson")')
    elif transform == "winsorize":
        cell.imports(
            "import numpy as np", "from sklearn.base import BaseEstimator, TransformerMixin"
        )
        cell.add(_WINSORIZER)
        steps.append("QuantileClipper(lower=0.01, upper=0.99)")
    elif transform == "signed_log":
        cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
        cell.add(_SIGNED_LOG)
        steps.append("FunctionTransformer(signed_log)")
    cell.imports("from sklearn.pipeline import make_pipeline")
    return py_call("make_pipeline", steps, prefix="numeric_pipeline = ")


def _encoder(ctx: _Context, cell: _Cell, encoding: str) -> str:
    if encoding in ("onehot", "onehot_rare"):
        cell.imports("from sklearn.preprocessing import OneHotEncoder")
        # Dense output keeps every model (HistGradientBoosting included) usable downstream.
        if encoding == "onehot_rare":
            return (
                'OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01, '
                "sparse_output=False)"
            )
        return (
            'OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30, '
            "sparse_output=False)"
        )
    if encoding == "ordinal":
        cell.imports("from sklearn.preprocessing import OrdinalEncoder")
        return py_call(
            "OrdinalEncoder",
            ['handle_unknown="use_encoded_value"', "unknown_value=-1", "encoded_missing_value=-1"],
        )
    if encoding == "target":
        return _target_encoder(ctx, cell)
    if encoding == "frequency":
        cell.imports(
            "import numpy as np",
            "import pandas as pd",
            "from sklearn.base import BaseEstimator, TransformerMixin",
        )
        cell.add(_FREQUENCY_ENCODER)
        return "FrequencyEncoder()"
    raise ValueError(f"unknown encoding {encoding!r}")


def _target_encoder(ctx: _Context, cell: _Cell) -> str:
    """A cross-fitted TargetEncoder with seeded, shuffled folds."""
    folds = ctx.estimator("KFold", "StratifiedKFold")
    cell.imports(
        "from sklearn.model_selection import " + folds,
        "from sklearn.preprocessing import TargetEncoder",
    )
    return py_call(
        "TargetEncoder",
        [
            f'target_type="{ctx.target_type}"',
            f"cv={folds}(5, shuffle=True, random_state=SEED)",
        ],
    )


_AS_OBJECTS = '''
def as_objects(frame):
    """Plain Python values with NaN for missing ones, whatever the pandas dtype (bool, category)."""
    return frame.astype(object).where(frame.notna(), np.nan)
'''

#: Column dtypes the imputers and encoders take as they are; others are converted first.
_PLAIN_CATEGORICAL_DTYPES = {"object", "str", "string"}


def _categorical_pipeline(ctx: _Context, cell: _Cell, encoding: str) -> str:
    encoder = _encoder(ctx, cell, encoding)
    steps = []
    if any(
        c.kind == CATEGORICAL and c.dtype not in _PLAIN_CATEGORICAL_DTYPES
        for c in ctx.profile.columns
    ):
        # SimpleImputer rejects bool columns and mixes of category and boolean dtypes.
        cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
        cell.add(_AS_OBJECTS)
        steps.append('FunctionTransformer(as_objects, feature_names_out="one-to-one")')
    if ctx.preprocess["categorical_impute"] != "none":
        # (Without an imputer the encoders treat a missing value as one more level.)
        cell.imports("from sklearn.impute import SimpleImputer")
        steps.append('SimpleImputer(strategy="most_frequent")')
    if not steps:
        return encoder
    cell.imports("from sklearn.pipeline import make_pipeline")
    return py_call("make_pipeline", [*steps, encoder])


def _row_filter(ctx: _Context, cell: _Cell) -> None:
    row_filter = ctx.preprocess["row_filter"]
    if row_filter == "duplicates":
        cell.add(
            "n_before = len(train)\n"
            "train = train.drop_duplicates()\n"
            'print(f"dropped {n_before - len(train)} duplicate training rows of {n_before}")'
        )
    elif row_filter == "isolation_forest":
        cell.imports("from sklearn.ensemble import IsolationForest")
        cell.add(py_list(ctx.informative_numeric, prefix="outlier_columns = "))
        cell.add(
            "# Only training rows are dropped: rows to predict are never filtered.\n"
            "numeric = train[outlier_columns].astype(float)\n"
            "filled = numeric.fillna(numeric.median())\n"
            "detector = IsolationForest(contamination=0.01, random_state=SEED, n_jobs=2)\n"
            "is_inlier = detector.fit_predict(filled) == 1\n"
            'print(f"dropping {(~is_inlier).sum()} anomalous training rows of {len(train)}")\n'
            "train = train[is_inlier]"
        )


def _target_transform_note(ctx: _Context, cell: _Cell) -> None:
    transform = ctx.target_transform
    if transform == "log1p":
        cell.imports("import numpy as np")
        cell.add(
            "# The model cell fits on log1p(target) and maps predictions back with expm1.\n"
            "log_skew = np.log1p(train[TARGET]).skew()\n"
            'print(f"skew of {TARGET}: {train[TARGET].skew():.2f}, after log1p: {log_skew:.2f}")\n'
            'notes["target_transform"] = "log1p"'
        )
    elif transform == "power":
        cell.imports("from sklearn.preprocessing import PowerTransformer")
        cell.add(
            "# The model cell fits on a Yeo-Johnson transform of the target and inverts it.\n"
            "transformed = PowerTransformer().fit_transform(train[[TARGET]])\n"
            "transformed_skew = pd.Series(transformed[:, 0]).skew()\n"
            'print(f"skew of {TARGET}: {train[TARGET].skew():.2f}, after Yeo-Johnson: '
            '{transformed_skew:.2f}")\n'
            'notes["target_transform"] = "yeo-johnson"'
        )
        cell.imports("import pandas as pd")


def _preprocess_cell(ctx: _Context) -> _Cell:
    cell = _Cell().imports("from sklearn.compose import ColumnTransformer, make_column_selector")
    _row_filter(ctx, cell)
    _target_transform_note(ctx, cell)

    ids = ctx.numeric_ids
    if ids:
        selector = (
            "# Every numeric column, those added by feature steps included, except the id-like "
            + ", ".join(py_str(i) for i in ids)
            + ".\n"
            + py_call(
                "make_column_selector",
                [f"pattern={_regex_literal(_id_exclusion_pattern(ids))}", 'dtype_include="number"'],
                prefix="numeric_columns = ",
            )
        )
    else:
        selector = (
            "# Every numeric column, those added by feature steps included.\n"
            'numeric_columns = make_column_selector(dtype_include="number")'
        )
    column_lines = [selector]

    encoding = ctx.preprocess["encoding"]
    categorical = ctx.categorical
    high = [
        c.name for c in ctx.profile.columns if c.kind == CATEGORICAL and c.unique > HIGH_CARDINALITY
    ]
    low = [c for c in categorical if c not in high]
    branches = ['("numeric", numeric_pipeline, numeric_columns)']
    pipelines = [_numeric_branch(ctx, cell)]
    if categorical and encoding == "mixed_target":
        if low:
            column_lines.append(py_list(low, prefix="low_cardinality_columns = "))
            pipelines.append("onehot_pipeline = " + _categorical_pipeline(ctx, cell, "onehot"))
            branches.append('("one_hot", onehot_pipeline, low_cardinality_columns)')
        column_lines.append(py_list(high, prefix="high_cardinality_columns = "))
        pipelines.append("target_pipeline = " + _categorical_pipeline(ctx, cell, "target"))
        branches.append('("target_encoded", target_pipeline, high_cardinality_columns)')
    elif categorical:
        column_lines.append(py_list(categorical, prefix="categorical_columns = "))
        pipelines.append("categorical_pipeline = " + _categorical_pipeline(ctx, cell, encoding))
        branches.append('("categorical", categorical_pipeline, categorical_columns)')

    cell.add("\n".join(column_lines))
    cell.add("\n".join(pipelines))
    excluded = [*ctx.profile.names(ID_LIKE), *ctx.text, *ctx.dates]
    comment = ""
    if excluded:
        comment = (
            '# Id-like, text and date columns are left out here (remainder="drop").\n'
            if len(", ".join(excluded)) > 60
            else f'# Left out: {", ".join(py_str(c) for c in excluded)} (remainder="drop").\n'
        )
    cell.add(
        comment
        + "preprocess = ColumnTransformer(\n    [\n"
        + "".join(f"        {b},\n" for b in branches)
        + '    ],\n    remainder="drop",\n)\n'
        'steps = [("preprocess", preprocess)]'
    )
    return cell


# -- features ----------------------------------------------------------------------------------


@dataclass
class _FeaturePart:
    """What one feature idea adds: definitions, raw-frame steps, preprocess branches, end steps."""

    cell: _Cell = field(default_factory=_Cell)
    front: list[tuple[str, str]] = field(default_factory=list)
    branches: list[tuple[str, str, str]] = field(default_factory=list)
    back: list[tuple[str, str]] = field(default_factory=list)


def _date_parts(ctx: _Context, rich: bool) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "import pandas as pd", "from sklearn.preprocessing import FunctionTransformer"
    )
    extra = ""
    if rich:
        part.cell.imports("import numpy as np")
        extra = (
            '        frame[f"{column}_day"] = dates.dt.day\n'
            '        frame[f"{column}_dayofyear"] = dates.dt.day_of_year\n'
            '        frame[f"{column}_hour"] = dates.dt.hour\n'
            '        frame[f"{column}_is_weekend"] = (dates.dt.day_of_week >= 5).astype(float)\n'
            "        # Cyclical encodings put December next to January and Sunday next to Monday.\n"
            '        frame[f"{column}_month_sin"] = np.sin(2 * np.pi * dates.dt.month / 12)\n'
            '        frame[f"{column}_month_cos"] = np.cos(2 * np.pi * dates.dt.month / 12)\n'
            '        frame[f"{column}_weekday_sin"] = np.sin(2 * np.pi * dates.dt.day_of_week / 7)\n'
            '        frame[f"{column}_weekday_cos"] = np.cos(2 * np.pi * dates.dt.day_of_week / 7)\n'
        )
    part.cell.add(py_list(ctx.dates, prefix="date_columns = "))
    part.cell.add(
        "def add_date_parts(frame, columns):\n"
        '    """Numeric parts of each date column (unparseable dates become missing)."""\n'
        "    frame = frame.copy()\n"
        "    for column in columns:\n"
        '        dates = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)\n'
        '        frame[f"{column}_year"] = dates.dt.year\n'
        '        frame[f"{column}_month"] = dates.dt.month\n'
        '        frame[f"{column}_weekday"] = dates.dt.day_of_week\n'
        '        epoch = pd.Timestamp("1970-01-01", tz="UTC")\n'
        '        frame[f"{column}_days_since_1970"] = (dates - epoch).dt.days\n'
        + extra
        + "    return frame"
    )
    part.front.append(
        (
            "date_parts",
            'FunctionTransformer(add_date_parts, kw_args={"columns": date_columns})',
        )
    )
    return part


def _text_tfidf(ctx: _Context, analyzer: str) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "from sklearn.decomposition import TruncatedSVD",
        "from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import FunctionTransformer",
    )
    components = max(2, min(100 if analyzer != "default" else 32, ctx.train_rows // 4))
    if analyzer == "char":
        vectorizer = (
            'HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=2**15, '
            "alternate_sign=False, norm=None)"
        )
    else:
        vectorizer = (
            "HashingVectorizer(ngram_range=(1, 2), n_features=2**15, alternate_sign=False, "
            "norm=None)"
        )
    part.cell.add(
        "def as_text(column):\n"
        '    """Missing texts become empty strings."""\n'
        '    return column.fillna("").astype(str)'
    )
    part.cell.add(
        "# Hashing keeps the width fixed, so the SVD works whatever the vocabulary size.\n"
        "text_pipeline = "
        + py_call(
            "make_pipeline",
            [
                "FunctionTransformer(as_text)",
                vectorizer,
                "TfidfTransformer(sublinear_tf=True)",
                f"TruncatedSVD(n_components={components}, random_state=SEED)",
            ],
        )
    )
    for i, column in enumerate(ctx.text):
        part.branches.append((f"text_{i}", "text_pipeline", py_str(column)))
    return part


def _text_stats(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(py_list(ctx.text, prefix="text_columns = "))
    part.cell.add(
        "def add_text_stats(frame, columns):\n"
        '    """Length, word count and character-class shares of each text column."""\n'
        "    frame = frame.copy()\n"
        "    for column in columns:\n"
        '        texts = frame[column].fillna("").astype(str)\n'
        "        length = texts.str.len()\n"
        "        share = length.clip(lower=1)\n"
        '        frame[f"{column}_length"] = length\n'
        '        frame[f"{column}_words"] = texts.str.split().str.len()\n'
        '        frame[f"{column}_digit_share"] = texts.str.count(r"\\d") / share\n'
        '        frame[f"{column}_upper_share"] = texts.str.count(r"[A-Z]") / share\n'
        '        frame[f"{column}_punctuation_share"] = texts.str.count(r"[^\\w\\s]") / share\n'
        "    return frame"
    )
    part.front.append(
        ("text_stats", 'FunctionTransformer(add_text_stats, kw_args={"columns": text_columns})')
    )
    return part


def _main_numeric(
    ctx: _Context, part: _FeaturePart, count: int, continuous: bool, purpose: str
) -> None:
    """Define ``main_columns``: the ``count`` numeric features with the most mutual information."""
    candidates = ctx.informative_numeric
    if continuous:
        wide = [c.name for c in ctx.profile.columns if c.name in candidates and c.unique > 2]
        candidates = wide if len(wide) >= 2 else candidates
    if len(candidates) <= count:
        part.cell.add(py_list(candidates, prefix="main_columns = "))
        return
    part.cell.imports(
        "import pandas as pd", f"from sklearn.feature_selection import {ctx.mutual_info}"
    )
    part.cell.add(py_list(candidates, prefix="candidate_columns = "))
    rows = _mi_rows(ctx, part.cell)
    part.cell.add(
        "# Rank by mutual information with the target, measured on training rows only.\n"
        f"numeric = {rows}[candidate_columns].astype(float)\n"
        "filled = numeric.fillna(numeric.median())\n"
        "informativeness = pd.Series(\n"
        f"    {ctx.mutual_info}(filled, {rows}[TARGET], random_state=SEED), "
        "index=candidate_columns\n"
        ")\n"
        f"main_columns = list(informativeness.nlargest({count}).index)\n"
        f"print({py_str(purpose + ':')}, main_columns)"
    )


def _ratios(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    _main_numeric(ctx, part, 4, continuous=True, purpose="ratios between")
    part.cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(
        "def add_ratios(frame, columns):\n"
        '    """a / b for each pair of columns (a zero denominator gives a missing value)."""\n'
        "    frame = frame.copy()\n"
        "    for i, numerator in enumerate(columns):\n"
        "        for denominator in columns[i + 1 :]:\n"
        "            ratio = frame[numerator] / frame[denominator].replace(0, np.nan)\n"
        '            frame[f"{numerator}_per_{denominator}"] = ratio.replace([np.inf, -np.inf], '
        "np.nan)\n"
        "    return frame"
    )
    part.front.append(
        ("ratios", 'FunctionTransformer(add_ratios, kw_args={"columns": main_columns})')
    )
    return part


def _products(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    _main_numeric(ctx, part, 4, continuous=False, purpose="products of")
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(
        "def add_products(frame, columns):\n"
        '    """a * b for each pair of columns: explicit interactions."""\n'
        "    frame = frame.copy()\n"
        "    for i, left in enumerate(columns):\n"
        "        for right in columns[i + 1 :]:\n"
        '            frame[f"{left}_times_{right}"] = frame[left] * frame[right]\n'
        "    return frame"
    )
    part.front.append(
        ("products", 'FunctionTransformer(add_products, kw_args={"columns": main_columns})')
    )
    return part


_GROUP_DEVIATION = '''
class GroupDeviation(TransformerMixin, BaseEstimator):
    """Add each column's difference from its training mean within the rows' group."""

    def __init__(self, group, columns):
        self.group = group
        self.columns = columns

    def fit(self, X, y=None):
        self.group_means_ = X.groupby(X[self.group].astype(str))[self.columns].mean()
        return self

    def transform(self, X):
        X = X.copy()
        means = self.group_means_.reindex(X[self.group].astype(str))
        for column in self.columns:
            gap = X[column].to_numpy(dtype=float) - means[column].to_numpy(dtype=float)
            X[f"{column}_minus_{self.group}_mean"] = gap
        return X
'''


def _group_deviation(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    levels = {c.name: c.unique for c in ctx.profile.columns if c.kind == CATEGORICAL}
    fitting = [name for name, n in levels.items() if 2 <= n <= 50]
    group = (
        max(fitting, key=lambda n: levels[n]) if fitting else min(levels, key=lambda n: levels[n])
    )
    _main_numeric(ctx, part, 3, continuous=True, purpose=f"gaps to the mean per {group}")
    part.cell.imports("from sklearn.base import BaseEstimator, TransformerMixin")
    part.cell.add(_GROUP_DEVIATION)
    part.front.append(
        ("group_deviation", f"GroupDeviation(group={py_str(group)}, columns=main_columns)")
    )
    return part


def _category_crosses(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    levels = {c.name: c.unique for c in ctx.profile.columns if c.kind == CATEGORICAL}
    candidates = [name for name, n in levels.items() if n <= 50]
    if len(candidates) < 2:
        candidates = sorted(levels, key=lambda n: levels[n])[:2]
    part.cell.imports(
        "from itertools import combinations",
        "from sklearn.preprocessing import FunctionTransformer",
    )
    if len(candidates) <= 3:
        part.cell.add(py_list(candidates, prefix="main_columns = "))
    else:
        part.cell.imports(
            f"from sklearn.feature_selection import {ctx.mutual_info}", "import pandas as pd"
        )
        part.cell.add(py_list(candidates, prefix="candidate_columns = "))
        rows = _mi_rows(ctx, part.cell)
        part.cell.add(
            "# Cross the three columns most informative about the target (on training rows).\n"
            f"codes = {rows}[candidate_columns].apply("
            'lambda column: column.astype("category").cat.codes)\n'
            "informativeness = pd.Series(\n"
            f"    {ctx.mutual_info}(codes, {rows}[TARGET], discrete_features=True, random_state=SEED),\n"
            "    index=candidate_columns,\n"
            ")\n"
            "main_columns = list(informativeness.nlargest(3).index)"
        )
    part.cell.add(
        "crossed_pairs = list(combinations(main_columns, 2))\n"
        'cross_columns = [f"{a} x {b}" for a, b in crossed_pairs]\n'
        'print("crossed:", cross_columns)'
    )
    part.cell.add(
        "def add_crosses(frame, pairs):\n"
        '    """One combined level per pair of categorical columns, e.g. "yes & no"."""\n'
        "    frame = frame.copy()\n"
        "    for a, b in pairs:\n"
        '        frame[f"{a} x {b}"] = frame[a].astype(str) + " & " + frame[b].astype(str)\n'
        "    return frame"
    )
    part.front.append(
        ("crosses", 'FunctionTransformer(add_crosses, kw_args={"pairs": crossed_pairs})')
    )
    part.branches.append(("crosses", _target_encoder(ctx, part.cell), "cross_columns"))
    return part


def _splines(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "from sklearn.impute import SimpleImputer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import SplineTransformer",
    )
    part.cell.add(py_list(ctx.informative_numeric, prefix="spline_columns = "))
    part.cell.add(
        "splines = make_pipeline(\n"
        '    SimpleImputer(strategy="median"), SplineTransformer(n_knots=5, degree=3)\n'
        ")"
    )
    part.branches.append(("splines", "splines", "spline_columns"))
    return part


def _category_frequency(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "import numpy as np",
        "import pandas as pd",
        "from sklearn.base import BaseEstimator, TransformerMixin",
    )
    part.cell.add(py_list(ctx.categorical, prefix="frequency_columns = "))
    part.cell.add(_FREQUENCY_ENCODER)
    part.branches.append(("category_frequency", "FrequencyEncoder()", "frequency_columns"))
    return part


def _category_target_means(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.add(py_list(ctx.categorical, prefix="encoded_columns = "))
    part.cell.add(
        "# Cross-fitted: each training row is encoded by folds that did not see its target.\n"
        "target_means = " + _target_encoder(ctx, part.cell)
    )
    part.branches.append(("category_target_means", "target_means", "encoded_columns"))
    return part


def _missing_count(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(
        "def add_missing_count(frame):\n"
        '    """The number of missing values in each row."""\n'
        "    frame = frame.copy()\n"
        '    frame["missing_count"] = frame.isna().sum(axis=1)\n'
        "    return frame"
    )
    part.front.append(("missing_count", "FunctionTransformer(add_missing_count)"))
    return part


def _polynomial(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "from sklearn.impute import SimpleImputer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import PolynomialFeatures",
    )
    part.cell.add(py_list(ctx.informative_numeric, prefix="polynomial_columns = "))
    part.cell.add(
        "# degree=(2, 2): only the squares and pairwise products; the originals are already in.\n"
        "polynomial = make_pipeline(\n"
        '    SimpleImputer(strategy="median"), PolynomialFeatures(degree=(2, 2), include_bias=False)\n'
        ")"
    )
    part.branches.append(("polynomial", "polynomial", "polynomial_columns"))
    return part


def _select_model(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    trees = ctx.estimator("ExtraTreesRegressor", "ExtraTreesClassifier")
    part.cell.imports(
        f"from sklearn.ensemble import {trees}",
        "from sklearn.feature_selection import SelectFromModel",
    )
    part.cell.add(
        "selector = SelectFromModel(\n"
        f"    {trees}(n_estimators=100, min_samples_leaf=5, random_state=SEED, n_jobs=2),\n"
        '    threshold="median",\n'
        ")"
    )
    part.back.append(("select", "selector"))
    return part


def _select_mutual_info(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "from functools import partial",
        f"from sklearn.feature_selection import SelectPercentile, {ctx.mutual_info}",
    )
    part.cell.add(
        "selector = SelectPercentile(\n"
        f"    partial({ctx.mutual_info}, random_state=SEED), percentile=60\n"
        ")"
    )
    part.back.append(("select", "selector"))
    return part


def _pca_components(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    components = min(8, max(1, ctx.n_inputs // 2))
    part.cell.imports(
        "from sklearn.decomposition import PCA",
        "from sklearn.pipeline import FeatureUnion, make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    part.cell.add(
        "with_components = FeatureUnion(\n"
        "    [\n"
        '        ("inputs", "passthrough"),\n'
        f'        ("pca", make_pipeline(StandardScaler(), PCA(n_components={components}, '
        "random_state=SEED))),\n"
        "    ]\n"
        ")"
    )
    part.back.append(("pca", "with_components"))
    return part


def _kmeans_distances(ctx: _Context) -> _FeaturePart:
    part = _FeaturePart()
    part.cell.imports(
        "from sklearn.cluster import KMeans",
        "from sklearn.pipeline import FeatureUnion, make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    part.cell.add(
        "# KMeans.transform gives each row's distance to every cluster centre.\n"
        "with_clusters = FeatureUnion(\n"
        "    [\n"
        '        ("inputs", "passthrough"),\n'
        '        ("clusters", make_pipeline(StandardScaler(), '
        "KMeans(n_clusters=8, n_init=3, random_state=SEED))),\n"
        "    ]\n"
        ")"
    )
    part.back.append(("clusters", "with_clusters"))
    return part


_FEATURE_RENDERERS = {
    "date_parts": lambda ctx: _date_parts(ctx, rich=True),
    "text_tfidf": lambda ctx: _text_tfidf(ctx, "word"),
    "text_char_tfidf": lambda ctx: _text_tfidf(ctx, "char"),
    "text_stats": _text_stats,
    "ratios": _ratios,
    "products": _products,
    "polynomial": _polynomial,
    "group_deviation": _group_deviation,
    "category_crosses": _category_crosses,
    "splines": _splines,
    "category_frequency": _category_frequency,
    "category_target_means": _category_target_means,
    "missing_count": _missing_count,
    "select_model": _select_model,
    "select_mutual_info": _select_mutual_info,
    "pca_components": _pca_components,
    "kmeans_distances": _kmeans_distances,
}


def _features_cell(ctx: _Context, feature: str | None) -> _Cell:
    parts: list[_FeaturePart] = []
    # Date and text columns are unusable raw; unless this idea handles them, use the defaults.
    if ctx.dates and feature != "date_parts":
        parts.append(_date_parts(ctx, rich=False))
    if ctx.text and feature not in ("text_tfidf", "text_char_tfidf"):
        parts.append(_text_tfidf(ctx, "default"))
    if feature is not None:
        parts.append(_FEATURE_RENDERERS[feature](ctx))
    cell = _Cell()
    if not parts:
        return cell
    for part in parts:
        cell.merge(part.cell)
    front = [step for part in parts for step in part.front]
    branches = [branch for part in parts for branch in part.branches]
    back = [step for part in parts for step in part.back]
    assembly = []
    if front:
        assembly.append(
            "# These steps work on the raw columns, before the preprocess step.\n"
            "steps = [\n"
            + "".join(f"    ({py_str(name)}, {expr}),\n" for name, expr in front)
            + "] + steps"
        )
    if branches:
        assembly.append(
            'preprocess = dict(steps)["preprocess"]\n'
            + "\n".join(
                f"preprocess.transformers.append(({py_str(name)}, {expr}, {columns}))"
                for name, expr, columns in branches
            )
        )
    if back:
        assembly.append("\n".join(f"steps.append(({py_str(name)}, {expr}))" for name, expr in back))
    cell.add("\n".join(assembly))
    return cell


# -- model -------------------------------------------------------------------------------------

#: The model a node gets before it reaches the model stage: a sound, fast gradient booster.
DEFAULT_MODEL: Mapping[str, Any] = {
    "family": "xgb",
    "params": {
        "n_estimators": 500,
        "learning_rate": 0.04,
        "max_depth": 4,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 2,
    },
}

_CLASS_NAMES = {
    "xgb": ("xgboost", "XGBRegressor", "XGBClassifier"),
    "hgb": ("sklearn.ensemble", "HistGradientBoostingRegressor", "HistGradientBoostingClassifier"),
    "rf": ("sklearn.ensemble", "RandomForestRegressor", "RandomForestClassifier"),
    "et": ("sklearn.ensemble", "ExtraTreesRegressor", "ExtraTreesClassifier"),
}


def _tree_model(ctx: _Context, family: str, params: Mapping[str, Any], cell: _Cell) -> str:
    """Render ``Class(params..., random_state=SEED[, n_jobs=2])`` and register its import."""
    module, regressor, classifier = _CLASS_NAMES[family]
    name = ctx.estimator(regressor, classifier)
    cell.imports(f"from {module} import {name}")
    args = [*kwargs(params), "random_state=SEED"]
    if family in ("xgb", "rf", "et"):
        args.append("n_jobs=2")
    return py_call(name, args)


def _task_params(ctx: _Context, spec: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(spec.get("params", {}))
    params.update(spec.get("regression" if ctx.regression else "classification", {}))
    if ctx.profile.n_rows > LARGE_DATA_ROWS:
        params.update(spec.get("large_data", {}))
    if not ctx.regression:
        params.pop("loss", None)
    return params


def _linear_model(ctx: _Context, params: Mapping[str, Any], cell: _Cell, tuned: bool) -> str:
    cell.imports(
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    if ctx.regression:
        cell.imports("import numpy as np", "from sklearn.linear_model import RidgeCV")
        return "make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))"
    cell.imports("from sklearn.linear_model import LogisticRegression")
    logistic = py_call("LogisticRegression", ["max_iter=3000", *kwargs(params)])
    if not tuned:
        return f"make_pipeline(StandardScaler(), {logistic})"
    cell.imports("from sklearn.model_selection import GridSearchCV")
    return (
        "GridSearchCV(\n"
        f"    make_pipeline(StandardScaler(), {logistic}),\n"
        '    {"logisticregression__C": [0.03, 0.3, 3.0]},\n'
        "    cv=3,\n"
        ")"
    )


def _knn_grid(ctx: _Context, grid: Sequence[int]) -> list[int]:
    # Each 3-fold CV fit sees about two thirds of the training rows.
    limit = max(1, int(ctx.train_rows * 2 / 3) - 1)
    return [k for k in grid if k <= limit] or [min(5, limit)]


def _knn_model(ctx: _Context, spec: Mapping[str, Any], cell: _Cell) -> str:
    neighbours = ctx.estimator("KNeighborsRegressor", "KNeighborsClassifier")
    cell.imports(
        "from sklearn.model_selection import GridSearchCV",
        f"from sklearn.neighbors import {neighbours}",
        "from sklearn.pipeline import Pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    grid = _knn_grid(ctx, spec.get("grid", [5, 10, 20, 40]))
    return (
        "GridSearchCV(\n"
        f'    Pipeline([("scale", StandardScaler()), ("knn", {neighbours}(weights="distance"))]),\n'
        f'    {{"knn__n_neighbors": {py_value(grid)}}},\n'
        "    cv=3,\n"
        ")"
    )


def _svm_model(ctx: _Context, spec: Mapping[str, Any], cell: _Cell) -> str:
    grid = py_value(list(spec.get("grid", [0.3, 1.0, 3.0, 10.0])))
    cell.imports(
        "from sklearn.model_selection import GridSearchCV",
        "from sklearn.pipeline import Pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    if ctx.regression:
        cell.imports(
            "from sklearn.compose import TransformedTargetRegressor", "from sklearn.svm import SVR"
        )
        cell.add(
            "# SVR's epsilon and C assume a unit-scale target, so the target is standardised too.\n"
            "svr = TransformedTargetRegressor(\n"
            '    regressor=Pipeline([("scale", StandardScaler()), ("svr", SVR())]),\n'
            "    transformer=StandardScaler(),\n"
            ")"
        )
        return f'GridSearchCV(svr, {{"regressor__svr__C": {grid}}}, cv=3)'
    cell.imports("from sklearn.svm import SVC")
    search = (
        "GridSearchCV(\n"
        '    Pipeline([("scale", StandardScaler()), ("svc", SVC())]),\n'
        f'    {{"svc__C": {grid}}},\n'
        "    cv=3,\n"
        ")"
    )
    if ctx.task.metric != "roc_auc":
        return search
    cell.imports("from sklearn.calibration import CalibratedClassifierCV")
    cell.add(f"svm = {search}")
    return "CalibratedClassifierCV(svm, ensemble=False, cv=3)  # ROC AUC needs class probabilities"


def _target_wrapper(ctx: _Context, cell: _Cell, inner: str) -> str:
    """``inner`` wrapped so it fits on the transformed target (or ``inner`` unchanged)."""
    transform = ctx.target_transform
    if transform is None:
        return inner
    cell.imports("from sklearn.compose import TransformedTargetRegressor")
    if transform == "log1p":
        cell.imports("import numpy as np")
        return py_call(
            "TransformedTargetRegressor",
            [f"regressor={inner}", "func=np.log1p", "inverse_func=np.expm1"],
        )
    cell.imports("from sklearn.preprocessing import PowerTransformer")
    return py_call(
        "TransformedTargetRegressor", [f"regressor={inner}", "transformer=PowerTransformer()"]
    )


def _early_stopping_xgb(ctx: _Context, spec: Mapping[str, Any], cell: _Cell) -> str:
    params = {k: v for k, v in _task_params(ctx, spec).items() if k != "n_estimators"}
    max_rounds = spec.get("params", {}).get("n_estimators", 2000)
    booster = ctx.estimator("XGBRegressor", "XGBClassifier")
    cell.imports(
        "from sklearn.base import clone",
        "from sklearn.model_selection import train_test_split",
        "from sklearn.pipeline import Pipeline",
        f"from xgboost import {booster}",
    )
    split_args = [
        "train.drop(columns=[TARGET])",
        "train[TARGET]",
        "test_size=0.2",
        "random_state=SEED",
    ]
    counts = ctx.profile.target_summary.get("counts", {})
    if counts and min(counts.values()) * 0.6 >= 5:  # every class keeps rows on both sides
        split_args.append("stratify=train[TARGET]")
    fit_y, stop_y = "y_fit", "y_stop"
    if ctx.target_transform == "log1p":
        cell.imports("import numpy as np")
        fit_y, stop_y = "np.log1p(y_fit)", "np.log1p(y_stop)"
    cell.add(
        "xgb_params = dict(\n"
        + "".join(f"    {arg},\n" for arg in kwargs(params))
        + "    random_state=SEED,\n    n_jobs=2,\n)"
    )
    cell.add(
        "# Choose the number of boosting rounds by early stopping on 20% of the training rows.\n"
        + py_call("train_test_split", split_args, prefix="X_fit, X_stop, y_fit, y_stop = ")
        + "\n"
        "inputs = clone(Pipeline(steps)).fit(X_fit, y_fit)\n"
        f"probe = {booster}(n_estimators={max_rounds}, early_stopping_rounds=100, **xgb_params)\n"
        "probe.fit(\n"
        f"    inputs.transform(X_fit), {fit_y},\n"
        f"    eval_set=[(inputs.transform(X_stop), {stop_y})], verbose=False,\n"
        ")\n"
        "# The final fit sees 25% more rows than the probe, so allow a few more rounds.\n"
        "n_rounds = int((probe.best_iteration + 1) * 1.1) + 1\n"
        'print(f"early stopping: best round {probe.best_iteration + 1}, fitting {n_rounds}")'
    )
    return f"{booster}(n_estimators=n_rounds, **xgb_params)"


#: The engine's metric -> the scikit-learn ``scoring`` that ranks configurations the same way.
_CV_SCORING = {
    "rmse": '"neg_root_mean_squared_error"',
    "rmsle": '"neg_root_mean_squared_error"',  # a negative CV prediction would break RMSLE
    "mae": '"neg_mean_absolute_error"',
    "r2": '"r2"',
    "accuracy": '"accuracy"',
    "f1_weighted": '"f1_weighted"',
    "f1": "make_scorer(f1_score, pos_label=POSITIVE)",
}


def _cv_scoring(ctx: _Context, cell: _Cell) -> str:
    """The ``scoring=`` argument for a CV search that optimises the run's metric."""
    metric = ctx.task.metric
    if metric == "roc_auc":
        return '"roc_auc"' if ctx.task.task_type == "binary" else '"roc_auc_ovr_weighted"'
    if metric == "f1":
        cell.imports("from sklearn.metrics import f1_score, make_scorer")
    return _CV_SCORING[metric]


def _tuned_xgb(ctx: _Context, spec: Mapping[str, Any], cell: _Cell) -> str:
    """A random search over booster settings, run in the model cell (on train, by 3-fold CV):
    the cell leaves a plain booster with the winning settings, so children that resume from this
    node's kernel state (an ensemble stage, a stack) never search again."""
    booster = ctx.estimator("XGBRegressor", "XGBClassifier")
    cell.imports(
        "from scipy.stats import loguniform, randint, uniform",
        "from sklearn.base import clone",
        "from sklearn.model_selection import RandomizedSearchCV",
        "from sklearn.pipeline import Pipeline",
        f"from xgboost import {booster}",
    )
    n_iter = spec["n_iter"] if ctx.profile.n_rows <= LARGE_DATA_ROWS else spec["n_iter_large"]
    y = "train[TARGET]"
    if ctx.target_transform == "log1p":
        cell.imports("import numpy as np")
        y = "np.log1p(train[TARGET])"
    cell.add(
        "# Sample booster settings at random and rank them by 3-fold CV on the training rows\n"
        "# alone, a steadier judge than one small validation split.\n"
        "xgb_space = {\n"
        '    "n_estimators": randint(50, 500),\n'
        '    "learning_rate": loguniform(0.02, 0.3),\n'
        '    "max_depth": randint(2, 9),\n'
        '    "min_child_weight": loguniform(0.05, 10),\n'
        '    "subsample": uniform(0.5, 0.5),\n'
        '    "colsample_bytree": uniform(0.5, 0.5),\n'
        '    "reg_lambda": loguniform(0.01, 10),\n'
        "}\n"
        "search = RandomizedSearchCV(\n"
        f"    {booster}(random_state=SEED, n_jobs=2),\n"
        "    xgb_space,\n"
        f"    n_iter={n_iter},\n"
        "    cv=3,\n"
        f"    scoring={_cv_scoring(ctx, cell)},\n"
        "    random_state=SEED,\n"
        ")\n"
        "inputs = clone(Pipeline(steps)).fit(train.drop(columns=[TARGET]), train[TARGET])\n"
        f"search.fit(inputs.transform(train.drop(columns=[TARGET])), {y})\n"
        "xgb_best = search.best_params_\n"
        'print(f"random search: best 3-fold CV score {search.best_score_:.4g} (higher is better)")\n'
        'print("settings:", xgb_best)'
    )
    return f"{booster}(**xgb_best, random_state=SEED, n_jobs=2)"


def _model_expression(ctx: _Context, spec: Mapping[str, Any], cell: _Cell) -> str:
    family = spec["family"]
    if family in _CLASS_NAMES:
        return _tree_model(ctx, family, _task_params(ctx, spec), cell)
    if family == "xgb_early_stopping":
        return _early_stopping_xgb(ctx, spec, cell)
    if family == "xgb_tuned":
        return _tuned_xgb(ctx, spec, cell)
    if family == "linear":
        return _linear_model(ctx, _task_params(ctx, spec), cell, tuned=True)
    if family == "knn":
        return _knn_model(ctx, spec, cell)
    if family == "svm":
        return _svm_model(ctx, spec, cell)
    raise ValueError(f"unknown model family {family!r}")


def _model_cell(ctx: _Context, spec: Mapping[str, Any]) -> _Cell:
    cell = _Cell()
    expression = _model_expression(ctx, spec, cell)
    transform = ctx.target_transform
    if transform is None:
        cell.add(f"model = {expression}")
        return cell
    cell.add(f"base_model = {expression}")
    note = (
        "# Fit on log1p(target) and predict back on the original scale."
        if transform == "log1p"
        else "# Fit on a Yeo-Johnson transform of the target and invert it for predictions."
    )
    cell.add(note + "\n" + _target_wrapper(ctx, cell, "base_model").join(["model = ", ""]))
    return cell


# -- ensemble ----------------------------------------------------------------------------------

# Ensemble members are a little lighter than the model-stage configurations: they are fitted
# once per stacking fold, and averaging makes up for what each one gives up.
_COMPLEMENT_BOOSTER_XGB = {
    "n_estimators": 300,
    "learning_rate": 0.06,
    "max_depth": 4,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
}
_COMPLEMENT_BOOSTER_HGB = {
    "learning_rate": 0.08,
    "max_iter": 200,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 10,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def _complement(ctx: _Context, member: str, cell: _Cell) -> tuple[str, str]:
    """(name, expression) of a complementary estimator that differs from the chosen model."""
    chosen = ctx.model_family
    if member == "linear" and chosen == "linear":
        member = "booster"
    if member == "knn" and chosen == "knn":
        member = "trees"
    if member == "booster":
        if chosen in ("xgb", "xgb_early_stopping", "xgb_tuned"):
            return "hist_gradient_boosting", _tree_model(ctx, "hgb", _COMPLEMENT_BOOSTER_HGB, cell)
        return "xgboost", _tree_model(ctx, "xgb", _COMPLEMENT_BOOSTER_XGB, cell)
    if member in ("trees", "forest"):
        family = "et" if member == "trees" else "rf"
        if family == chosen:
            family = "rf" if family == "et" else "et"
        features = (0.7 if family == "et" else 0.6) if ctx.regression else "sqrt"
        leaf = 3 if ctx.profile.n_rows > LARGE_DATA_ROWS else 1
        params = {"n_estimators": 200, "max_features": features, "min_samples_leaf": leaf}
        name = "extra_trees" if family == "et" else "random_forest"
        return name, _tree_model(ctx, family, params, cell)
    if member == "linear":
        return "linear", _linear_model(ctx, {}, cell, tuned=False)
    if member == "knn":
        neighbours = ctx.estimator("KNeighborsRegressor", "KNeighborsClassifier")
        cell.imports(
            f"from sklearn.neighbors import {neighbours}",
            "from sklearn.pipeline import make_pipeline",
            "from sklearn.preprocessing import StandardScaler",
        )
        k = _knn_grid(ctx, [15])[0]
        return "knn", (
            f'make_pipeline(StandardScaler(), {neighbours}(n_neighbors={k}, weights="distance"))'
        )
    raise ValueError(f"unknown ensemble member {member!r}")


def _members(ctx: _Context, names: Iterable[str], cell: _Cell) -> list[tuple[str, str]]:
    members = [("chosen", "model")]
    for name in names:
        label, expression = _complement(ctx, name, cell)
        if ctx.target_transform is not None:
            expression = f"on_target_scale({expression})"
        members.append((label, expression))
    return members


def _target_scale_helper(ctx: _Context, cell: _Cell) -> None:
    """Define ``on_target_scale`` so the new members fit on the same target scale as ``model``."""
    if ctx.target_transform is None:
        return
    cell.add(
        "def on_target_scale(regressor):\n"
        '    """Fit on the transformed target, like the chosen model, and predict on the original."""\n'
        "    return " + _target_wrapper(ctx, cell, "regressor")
    )


def _probability_fix(ctx: _Context, cell: _Cell) -> None:
    """Give a chosen SVM class probabilities (soft voting averages them)."""
    if not ctx.regression and ctx.model_family == "svm" and ctx.task.metric != "roc_auc":
        cell.imports("from sklearn.calibration import CalibratedClassifierCV")
        cell.add(
            "# The SVM gives no class probabilities: calibrate its decision function by 3-fold CV.\n"
            "model = CalibratedClassifierCV(model, ensemble=False, cv=3)"
        )


def _cv_folds(ctx: _Context) -> int:
    # Stacking fits every member once per fold: 5 folds where data is small, 3 beyond.
    return 5 if ctx.profile.n_rows <= 1000 else 3


def _member_list(members: Sequence[tuple[str, str]]) -> str:
    lines = []
    for name, expression in members:
        lines.append(f"        ({py_str(name)}, {_indent_continuation(expression, 8)}),")
    return "[\n" + "\n".join(lines) + "\n    ]"


def _ensemble_cell(ctx: _Context, spec: Mapping[str, Any]) -> _Cell:
    cell = _Cell()
    kind = spec["ensemble"]
    if kind in ("stack", "vote"):
        _target_scale_helper(ctx, cell)
        if kind == "vote" and spec.get("voting") == "soft":
            _probability_fix(ctx, cell)
        members = _members(ctx, spec["members"], cell)
    if kind == "stack":
        folds = ctx.estimator("KFold", "StratifiedKFold")
        cell.imports(f"from sklearn.model_selection import {folds}")
        if ctx.regression:
            cell.imports(
                "import numpy as np",
                "from sklearn.ensemble import StackingRegressor",
                "from sklearn.linear_model import RidgeCV",
            )
            stack, final = "StackingRegressor", "RidgeCV(alphas=np.logspace(-3, 3, 13))"
        else:
            cell.imports(
                "from sklearn.ensemble import StackingClassifier",
                "from sklearn.linear_model import LogisticRegression",
            )
            stack, final = "StackingClassifier", "LogisticRegression(max_iter=2000)"
        cell.add(
            "# The meta-learner is fitted on out-of-fold predictions of the members.\n"
            f"model = {stack}(\n"
            f"    {_member_list(members)},\n"
            f"    final_estimator={final},\n"
            f"    cv={folds}({_cv_folds(ctx)}, shuffle=True, random_state=SEED),\n"
            ")"
        )
    elif kind == "vote":
        weights = spec.get("weights")
        extra = [f"weights={py_value(list(weights))}"] if weights else []
        if ctx.regression:
            cell.imports("from sklearn.ensemble import VotingRegressor")
            head = "VotingRegressor"
        else:
            cell.imports("from sklearn.ensemble import VotingClassifier")
            head = "VotingClassifier"
            extra.insert(0, f"voting={py_str(spec.get('voting', 'soft'))}")
        cell.add(
            f"model = {head}(\n"
            f"    {_member_list(members)},\n" + "".join(f"    {arg},\n" for arg in extra) + ")"
        )
    elif kind == "bagging":
        bagging = ctx.estimator("BaggingRegressor", "BaggingClassifier")
        cell.imports(f"from sklearn.ensemble import {bagging}")
        cell.add(
            py_call(
                bagging,
                [
                    "estimator=model",
                    f"n_estimators={spec.get('n_estimators', 5)}",
                    f"max_samples={spec.get('max_samples', 0.8)}",
                    "random_state=SEED",
                ],
                prefix="model = ",
            )
        )
    elif kind == "seed_average":
        _probability_fix(ctx, cell)
        voting = ctx.estimator("VotingRegressor", "VotingClassifier")
        cell.imports("from sklearn.base import clone", f"from sklearn.ensemble import {voting}")
        cell.add(
            "def with_seed(estimator, seed):\n"
            '    """A copy of ``estimator`` with every random_state, nested ones too, set to seed."""\n'
            "    seeded = clone(estimator)\n"
            "    names = [name for name in seeded.get_params() "
            'if name.split("__")[-1] == "random_state"]\n'
            "    return seeded.set_params(**{name: seed for name in names})"
        )
        voting_arg = "" if ctx.regression else ', voting="soft"'
        cell.add(
            f"model = {voting}(\n"
            f'    [(f"seed_{{i}}", with_seed(model, SEED + i)) for i in range({spec["seeds"]})]'
            f"{voting_arg}\n)"
        )
    else:
        raise ValueError(f"unknown ensemble kind {kind!r}")
    return cell


# -- the coder ---------------------------------------------------------------------------------


#: How relevant (:func:`.insights.relevance`) a catalog entry must be to code a user insight
#: in its place when no LLM is configured.
CLOSEST_ENTRY_MIN = 0.25


class TemplateCoder:
    """Renders stage cells for built-in catalog insights (and the defaults) along a path.

    A user or LLM insight, when no LLM is there to code it, is coded as the closest applicable
    built-in insight of its stage by text similarity, and the cell says so.
    """

    def stage_code(
        self,
        stage: str,
        insight: Insight | None,
        path: Sequence[Insight],
        profile: DataProfile,
        task: Task,
    ) -> str:
        """The source of one notebook cell for ``stage``; ``""`` means no cell.

        ``path`` holds the insights of the earlier stages on the root-to-node path
        (``path[i].stage == STAGES[i]``); it may stop short of ``stage`` when the node has not
        reached it, and then ``insight`` is ``None`` and the stage's default is rendered.
        Raises :class:`KeyError` when ``insight`` is neither a built-in catalog entry nor close
        to one.
        """
        index = _check_path(stage, path)
        entry = None
        mapped = ""
        if insight is not None:
            if insight.source != "builtin":
                entry, mapped = self._closest(stage, insight, profile, task)
            else:
                entry = entry_for(insight.id)
            if entry.stage != stage:
                raise ValueError(
                    f"insight {insight.id!r} belongs to stage {entry.stage!r}, not {stage!r}"
                )
            if len(path) != index:
                raise ValueError(
                    f"stage {stage!r} needs the {index} earlier insights on the path, "
                    f"got {len(path)}"
                )
        ctx = _Context.build(profile, task, path)
        cell = self._render(stage, entry, ctx)
        source = cell.render()
        if mapped:
            source = f"{mapped}\n{source}"
        return source + "\n" if source else ""

    def _closest(
        self, stage: str, insight: Insight, profile: DataProfile, task: Task
    ) -> tuple[CatalogEntry, str]:
        """The applicable catalog entry of ``stage`` whose text is closest to a user or LLM
        insight, and the lines that say so in the cell; :class:`KeyError` when none is close."""
        candidates = [e for e in applicable_entries(profile, task) if e.stage == stage]
        scored = sorted(
            ((relevance(insight.text, e.insight(profile).text), e) for e in candidates),
            key=lambda pair: -pair[0],
        )
        if not scored or scored[0][0] < CLOSEST_ENTRY_MIN:
            raise KeyError(
                f"no LLM is configured to code the {insight.source} insight {insight.text!r} "
                f"and no built-in {stage} insight is close to it; configure an LLM "
                "(llm=MODEL, see the README) or word it like a catalog entry"
            )
        score, entry = scored[0]
        text = entry.insight(profile).text
        comment = (
            f"{insight.source.capitalize()} insight: {insight.text}. No LLM coded it; this cell "
            f"is the closest built-in insight ({entry.key}, similarity {score:.2f}): {text}"
        )
        lines = textwrap.wrap(comment, _LINE - 2, initial_indent="# ", subsequent_indent="# ")
        lines.append(f"print({py_str(f'SELA: coded as the closest built-in insight {entry.key}')})")
        return entry, "\n".join(reflow_line(line) for line in lines)

    def _render(self, stage: str, entry: CatalogEntry | None, ctx: _Context) -> _Cell:
        spec = entry.spec if entry is not None else None
        if stage == "eda":
            return _EDA_RENDERERS[spec["analysis"]](ctx) if spec else _eda_default(ctx)
        if stage == "preprocess":
            if spec is not None:
                ctx.preprocess.update(spec)
            return _preprocess_cell(ctx)
        if stage == "features":
            return _features_cell(ctx, spec["feature"] if spec else None)
        if stage == "model":
            if spec is not None:
                ctx.model, ctx.model_key = spec, entry.key
            return _model_cell(ctx, ctx.model or DEFAULT_MODEL)
        if spec is None:
            return _Cell()  # the default ensemble is the chosen model alone
        return _ensemble_cell(ctx, spec)


def _check_path(stage: str, path: Sequence[Insight]) -> int:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    index = STAGES.index(stage)
    if len(path) > index:
        raise ValueError(
            f"the path to stage {stage!r} holds {len(path)} insights; "
            f"at most {index} come before it"
        )
    for i, insight in enumerate(path):
        if insight.stage != STAGES[i]:
            raise ValueError(f"path[{i}] is a {insight.stage!r} insight; expected {STAGES[i]!r}")
    return index


# -- the code cache ----------------------------------------------------------------------------

CacheKey = tuple[str, ...]


class StageCodeCache:
    """Stage code by (stage, insight ids on the path up to and including the stage)."""

    def __init__(self) -> None:
        self._code: dict[tuple[str, CacheKey], str] = {}

    @staticmethod
    def key_for(stage: str, insight: Insight | None, path: Sequence[Insight]) -> CacheKey:
        """The ids of ``path`` then ``insight``; ``"default"`` for stages without an insight."""
        index = _check_path(stage, path)
        ids = [i.id for i in path] + ["default"] * (index - len(path))
        return (*ids, insight.id if insight is not None else "default")

    def get(self, stage: str, key: CacheKey) -> str | None:
        """The cached code, or ``None`` when this stage and path were never coded."""
        return self._code.get((stage, tuple(key)))

    def put(self, stage: str, key: CacheKey, code: str) -> None:
        """Remember ``code`` for ``stage`` and ``key``."""
        self._code[(stage, tuple(key))] = code

    def __len__(self) -> int:
        return len(self._code)

    def __contains__(self, item: object) -> bool:
        return item in self._code

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-ready form: ``{"entries": [{"stage", "path", "code"}, ...]}``, in insertion order."""
        return {
            "entries": [
                {"stage": stage, "path": list(key), "code": code}
                for (stage, key), code in self._code.items()
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageCodeCache:
        """Inverse of :meth:`to_dict`."""
        cache = cls()
        for item in data.get("entries", []):
            cache.put(item["stage"], tuple(item["path"]), item["code"])
        return cache
