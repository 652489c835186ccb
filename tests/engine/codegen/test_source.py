"""The Python source helpers: literals, wrapped lists and calls, line reflow and the cell builder."""

from __future__ import annotations

import ast

import pytest

from sela_jupyter.engine.codegen.source import (
    LINE,
    Cell,
    kwargs,
    py_call,
    py_list,
    py_str,
    py_value,
    reflow_line,
    regex_literal,
)


@pytest.mark.parametrize("value", ["plain", "it's", 'say "hi"', "two\nlines", "back\\slash", "ü"])
def test_py_str_is_a_literal_of_the_value_double_quoted_where_it_can_be(value):
    literal = py_str(value)

    assert ast.literal_eval(literal) == value
    assert literal.startswith('"') or '"' in value


def test_py_value_renders_parameter_values():
    assert py_value((1,)) == "(1,)"
    assert py_value(("a", 2.5)) == '("a", 2.5)'
    assert py_value([True, None]) == "[True, None]"
    assert kwargs({"max_depth": 4, "loss": "absolute_error"}) == [
        "max_depth=4",
        'loss="absolute_error"',
    ]


def test_py_list_wraps_to_the_line_width():
    short = py_list(["a", "b"], prefix="columns = ")
    long = py_list([f"column_{i}" for i in range(20)], prefix="columns = ")

    assert short == 'columns = ["a", "b"]'
    assert long.startswith("columns = [\n") and long.endswith("\n]")
    assert max(len(line) for line in long.splitlines()) <= LINE
    assert ast.literal_eval(long.split(" = ", 1)[1]) == [f"column_{i}" for i in range(20)]


def test_py_call_puts_one_argument_per_line_when_it_does_not_fit():
    assert py_call("f", ["x=1", "y=2"], prefix="z = ") == "z = f(x=1, y=2)"
    wrapped = py_call("Estimator", [f"parameter_{i}={i}" for i in range(12)])
    assert wrapped.splitlines()[0] == "Estimator(" and wrapped.endswith("\n)")
    ast.parse(wrapped)


def test_reflow_line_splits_at_the_widest_bracket_and_keeps_short_lines():
    line = "    values = some_function(" + ", ".join(f"argument_{i}" for i in range(10)) + ")"

    reflowed = reflow_line(line)

    assert reflow_line("x = f(1)") == "x = f(1)"
    assert reflowed.splitlines()[0] == "    values = some_function("
    assert all(len(part) <= LINE for part in reflowed.splitlines())
    ast.parse("if True:\n" + reflowed)


def test_reflow_line_leaves_comments_strings_and_subscripts_alone():
    comment = "# " + "word " * 30
    subscript = "x = frame[" + " + ".join(f"'c{i}'" for i in range(30)) + "]"

    assert reflow_line(comment) == comment
    assert reflow_line(subscript) == subscript


def test_regex_literal_is_raw_where_it_can_be():
    assert regex_literal(r"^(?!(?:a\.b)$)") == r'r"^(?!(?:a\.b)$)"'
    assert regex_literal("plain") == '"plain"'
    assert ast.literal_eval(regex_literal('say "\\d"')) == 'say "\\d"'


def test_cell_renders_sorted_grouped_imports_then_blocks():
    cell = Cell().imports(
        "from sklearn.pipeline import make_pipeline",
        "import numpy as np",
        "from functools import partial",
        "from sklearn.experimental import enable_iterative_imputer  # noqa: F401",
        "from sklearn.pipeline import Pipeline",
    )
    cell.add("x = 1").add("def f():\n    return x").add("")

    assert cell.render() == (
        "from functools import partial\n"
        "\n"
        "import numpy as np\n"
        "from sklearn.experimental import enable_iterative_imputer  # noqa: F401\n"
        "from sklearn.pipeline import Pipeline, make_pipeline\n"
        "\n"
        "x = 1\n"
        "\n"
        "\n"
        "def f():\n"
        "    return x"
    )


def test_cell_merge_takes_over_imports_and_blocks():
    first = Cell().imports("import numpy as np").add("a = np.zeros(1)")
    second = Cell().imports("import pandas as pd").add("b = pd.Series(a)")

    merged = first.merge(second).render()

    assert merged.startswith("import numpy as np\nimport pandas as pd\n\n")
    assert merged.endswith("a = np.zeros(1)\n\nb = pd.Series(a)")
