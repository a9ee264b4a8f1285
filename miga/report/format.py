"""How the report writes numbers and tables: the one number formatter and the one Markdown table
writer, so that every section prints a value, its interval and a missing value the same way.

A table picks its digits by naming a `Digits` rule (the paper's tables print three decimals, the
compact protocol tables three significant digits for small values); the rule lives here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from miga.metrics.summary import CI_SUFFIX

#: What a missing or undefined (NaN) value prints as, everywhere in the report.
MISSING = "—"

#: A digit rule: a finite float → its text.
Digits = Callable[[float], str]


def paper(value: float) -> str:
    """The paper's tables and heat-maps: 3 decimals, 2 from 10 on (PSNR in dB)."""
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def compact(value: float) -> str:
    """Protocol tables (step size, ablation, sensor): 2 decimals, 3 significant digits below
    0.1 so that a small epsilon or L-inf does not print as 0.00."""
    return f"{value:.3g}" if 0 < abs(value) < 0.1 else f"{value:.2f}"


def two_decimals(value: float) -> str:
    """Spreads and the bounds of compact intervals."""
    return f"{value:.2f}"


def signed(value: float) -> str:
    """Differences (paired comparison): the sign always shown."""
    return f"{value:+.2f}"


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: object, digits: Digits = paper) -> str:
    """The report's one number formatter: `MISSING` for None/NaN, a number by `digits`, any other
    value (a choice name) as its text."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (int, float)):
        return digits(float(value))
    return str(value)


def with_interval(
    value: object,
    ci: Sequence[float] | None,
    digits: Digits = paper,
    bounds: Digits | None = None,
) -> str:
    """`0.786 [0.524, 0.924]`: the value, and its 95 % interval where there is a finite one
    (`bounds`: the interval's digit rule, the value's by default)."""
    text = number(value, digits)
    if not ci or is_missing(value) or any(is_missing(float(v)) for v in ci):
        return text
    low, high = (number(float(v), bounds or digits) for v in ci)
    return f"{text} [{low}, {high}]"


def summary_value(summary: Mapping[str, object], key: str) -> str:
    """`key` of a cell's summary in the protocol tables' digits (`compact`), with its interval
    (`<key>_ci95`, two decimals) where the summary has one."""
    return with_interval(summary.get(key), summary.get(key + CI_SUFFIX), compact, two_decimals)


def sortable(value: object) -> float:
    """A number to sort or plot by (missing, NaN or not a number → -inf: never wins a pick)."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(result) else result


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The report's one Markdown table writer: a header row, `|---|`, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def grid_table(
    metric: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Mapping[tuple[str, str], object],
    cis: Mapping[tuple[str, str], Sequence[float]] | None = None,
) -> str:
    """A rows × columns table of one metric (the paper's layout, the transfer matrices): each
    value with its interval, the metric's name in the corner."""
    cis = cis or {}
    body = [
        [row, *[with_interval(values.get((row, c)), cis.get((row, c))) for c in columns]]
        for row in rows
    ]
    return markdown_table([metric, *columns], body)


def label(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """`k=v, k=v`: how the report names a cell or a group of cells."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return ", ".join(f"{k}={v}" for k, v in items)
