"""Python source helpers: literals, calls wrapped to the line width, and the cell builder.

Everything here is about the text of generated code, nothing about the data: quoting values
(:func:`py_str`, :func:`py_value`), laying out lists and calls (:func:`py_list`,
:func:`py_call`), splitting over-long lines at their widest bracket as black would
(:func:`reflow_line`), and :class:`Cell`, which gathers one cell's imports and code blocks and
renders them in a fixed order.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

#: Generated lines stay within this width where the coder controls it.
LINE = 99
# The standard-library modules templates import: a cell lists their imports first.
_STDLIB = {"functools", "itertools", "re", "math"}


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
    if len(one_line) + indent <= LINE:
        return one_line
    pad = " " * (indent + 4)
    lines, current = [], ""
    for item in items:
        candidate = f"{current} {item}," if current else f"{item},"
        if current and len(pad) + len(candidate) > LINE:
            lines.append(pad + current)
            current = f"{item},"
        else:
            current = candidate
    lines.append(pad + current)
    return prefix + "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


def py_call(function: str, args: Sequence[str], prefix: str = "", indent: int = 0) -> str:
    """``prefix + function(args...)`` on one line if it fits, else one argument per line."""
    one_line = f"{prefix}{function}({', '.join(args)})"
    if len(one_line) + indent <= LINE and "\n" not in one_line:
        return one_line
    pad = " " * (indent + 4)
    body = "\n".join(pad + indent_continuation(a, indent + 4) + "," for a in args)
    return f"{prefix}{function}(\n{body}\n{' ' * indent})"


def indent_continuation(text: str, indent: int) -> str:
    """Indent the continuation lines of a multi-line argument by ``indent`` spaces."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(" " * indent + line for line in rest)])


def kwargs(params: Mapping[str, Any]) -> list[str]:
    """``["name=value", ...]`` for a parameter mapping, in its order."""
    return [f"{name}={py_value(value)}" for name, value in params.items()]


class Cell:
    """Collects the imports and code blocks of one cell and renders them in order."""

    def __init__(self) -> None:
        self._imports: dict[str, set[str]] = {}
        self._plain: set[str] = set()
        self._raw: dict[str, str] = {}
        self.blocks: list[str] = []

    def imports(self, *lines: str) -> Cell:
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

    def add(self, block: str) -> Cell:
        """Append a code block (blank-line separated from its neighbours)."""
        if block.strip():
            self.blocks.append(block.strip("\n"))
        return self

    def merge(self, other: Cell) -> Cell:
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
            if len(line) > LINE:
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


def reflow_line(line: str, width: int = LINE) -> str:
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
    """Whether ``block`` starts a top-level function or class definition."""
    return block.lstrip().startswith(("def ", "class ", "@"))


def _import_name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def regex_literal(pattern: str) -> str:
    """A Python string literal for a regex: raw (``r"..."``) when it has backslashes and can be."""
    raw_safe = pattern.isprintable() and '"' not in pattern and not pattern.endswith("\\")
    if "\\" in pattern and raw_safe:
        return f'r"{pattern}"'
    return py_str(pattern)
