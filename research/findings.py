"""What a study found, as data: estimates with intervals, answers, tables.

A study's analysis returns :class:`Findings`; one renderer turns them into
``summary.md`` (:func:`to_markdown`) and ``findings.json`` (:func:`to_json`),
and ``python -m research report`` reads the JSON back (:func:`from_json`), never
the Markdown. Every interval is written one way, ``value [low, high]``:

* a fraction (a metric that :data:`research.metrics.METRICS` marks as a
  percentage): ``66.4% [65.2, 67.6]``;
* a difference of fractions, in percentage points: ``+1.2 pp [-0.3, +2.7]``;
* anything else: ``1.234 [1.222, 1.246]``.

Examples:
  >>> accuracy = Estimate.of_mean([0.60, 0.62, 0.64], "test_accuracy")
  >>> accuracy.text()
  '62.0% [57.0, 67.0]'
  >>> found = Findings("Does it work?", (Answer("relu reaches {}.", (accuracy,), headline=True),))
  >>> print(to_markdown(found, name="demo").splitlines()[0])
  # demo: Does it work?
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from research import metrics
from research.statistics import mean_confidence_interval, wilson

Kind = Literal["percent", "points", "number"]
VERDICTS = ("held", "did not hold", "undecided", "")


def _decimals(value: float) -> int:
  """At least 3 decimals, and 3 significant digits for values below 0.01."""
  if not math.isfinite(value) or value == 0:
    return 3
  return min(10, max(3, 2 - math.floor(math.log10(abs(value)))))


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A number with its 95% interval (``low``/``high`` NaN when there is none).

  Attributes:
    value: the estimate (a mean, a proportion, a paired difference, a correlation).
    low: the interval's lower end.
    high: its upper end.
    kind: ``percent`` (a fraction), ``points`` (a difference of fractions) or ``number``.
    n: the sample behind it (seeds, pairs, trials); 0 if not counted.
  """

  value: float
  low: float = math.nan
  high: float = math.nan
  kind: Kind = "number"
  n: int = 0

  @classmethod
  def of_mean(cls, values: Sequence[float], metric: str = "") -> Estimate:
    """The mean of ``values`` with its Student t interval; a percentage if ``metric`` is one."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    mean, half = mean_confidence_interval(values)
    return cls(mean, mean - half, mean + half, _kind(metric), len(values))

  @classmethod
  def of_difference(cls, comparison: Any, metric: str = "") -> Estimate:
    """A :class:`research.statistics.PairedComparison` as an estimate (points for a fraction)."""
    mean, half = comparison.mean_difference, comparison.half_width
    kind: Kind = "points" if _kind(metric) == "percent" else "number"
    return cls(mean, mean - half, mean + half, kind, comparison.num_pairs)

  @classmethod
  def of_proportion(cls, successes: int, trials: int) -> Estimate:
    """A binomial proportion with its Wilson interval."""
    if trials == 0:
      return cls(math.nan, kind="percent")
    low, high = wilson(successes, trials)
    return cls(successes / trials, low, high, "percent", trials)

  @property
  def has_interval(self) -> bool:
    return not (math.isnan(self.low) or math.isnan(self.high))

  @property
  def excludes_zero(self) -> bool:
    """The interval lies wholly above or below 0 (a detected difference)."""
    return self.has_interval and (self.low > 0 or self.high < 0)

  def text(self) -> str:
    """The one notation of every interval: ``66.4% [65.2, 67.6]``, ``+1.2 pp [-0.3, +2.7]``."""
    if math.isnan(self.value):
      return "-"
    if self.kind == "percent":
      main, ends = f"{100 * self.value:.1f}%", (f"{100 * self.low:.1f}", f"{100 * self.high:.1f}")
    elif self.kind == "points":
      main, ends = f"{100 * self.value:+.1f} pp", (f"{100 * self.low:+.1f}", f"{100 * self.high:+.1f}")
    else:
      width = max(abs(self.value), abs(self.high - self.value) if self.has_interval else 0.0)
      places = _decimals(width)
      main, ends = f"{self.value:.{places}f}", (f"{self.low:.{places}f}", f"{self.high:.{places}f}")
    return f"{main} [{ends[0]}, {ends[1]}]" if self.has_interval else main

  def record(self) -> dict[str, Any]:
    """JSON-ready: the numbers (NaN as ``None``) and the text."""
    return {"value": _finite(self.value), "low": _finite(self.low), "high": _finite(self.high),
            "kind": self.kind, "n": self.n, "text": self.text()}


def _kind(metric: str) -> Kind:
  return "percent" if metric and metrics.describe(metric).percent else "number"


def _finite(value: float) -> float | None:
  return None if value is None or not math.isfinite(value) else float(value)


@dataclasses.dataclass(frozen=True)
class Answer:
  """One sentence of what a study found; ``{}`` in ``text`` takes the estimates in order.

  Attributes:
    text: the sentence, e.g. ``"relu vs necro_relu: {} in test accuracy."``.
    estimates: the numbers it quotes.
    verdict: ``held``, ``did not hold``, ``undecided``, or empty for a measurement.
    topic: the question it belongs to (the summary groups answers by topic).
    headline: one line per question: what ``FINDINGS.md`` quotes first.
  """

  text: str
  estimates: tuple[Estimate, ...] = ()
  verdict: str = ""
  topic: str = ""
  headline: bool = False

  def __post_init__(self) -> None:
    if self.verdict not in VERDICTS:
      raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}.")
    if self.text.count("{}") != len(self.estimates):
      raise ValueError(f"{self.text!r} has {self.text.count('{}')} places for"
                       f" {len(self.estimates)} estimate(s).")

  def render(self) -> str:
    sentence = self.text.format(*(estimate.text() for estimate in self.estimates))
    return f"{sentence} ({self.verdict})" if self.verdict else sentence


@dataclasses.dataclass(frozen=True)
class Table:
  """A titled table: a DataFrame whose cells are numbers, text or :class:`Estimate`."""

  title: str
  frame: pd.DataFrame
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Findings:
  """Everything a study's summary says, as data.

  Attributes:
    question: what the study asks (the summary's title).
    answers: what it found, in order.
    tables: the tables behind the answers.
    notes: how to read them (definitions, caveats), one item each.
    plots: the figures written beside the summary (file names).
    data: derived tables written as ``<name>.csv`` beside the engine's files.
  """

  question: str
  answers: tuple[Answer, ...] = ()
  tables: tuple[Table, ...] = ()
  notes: tuple[str, ...] = ()
  plots: tuple[str, ...] = ()
  data: Mapping[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

  @property
  def headlines(self) -> tuple[Answer, ...]:
    """The answers marked ``headline``; the first answer if none is."""
    marked = tuple(answer for answer in self.answers if answer.headline)
    return marked or self.answers[:1]


def cell_text(value: Any) -> str:
  """A table cell as text: an estimate in the one notation, ``-`` for none."""
  if isinstance(value, Estimate):
    return value.text()
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
  """A DataFrame as a GitHub Markdown table: text columns left-aligned, numbers right-aligned."""
  header = [str(column) for column in frame.columns]
  rows = list(frame.itertuples(index=False))
  align = ["---" if all(_is_text(row[index]) for row in rows) else "---:"
           for index in range(len(header))]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
  return "\n".join(lines + ["| " + " | ".join(cell_text(value) for value in row) + " |"
                            for row in rows])


def _is_text(value: Any) -> bool:
  """Words, not a number (``-`` and empty cells count as either)."""
  if not isinstance(value, str) or value in ("", "-"):
    return isinstance(value, str)
  try:
    float(value.replace("/", "").replace("<", "").rstrip("%"))
  except ValueError:
    return True
  return False


def to_markdown(findings: Findings, *, name: str, reproduce: Sequence[str] = ()) -> str:
  """``summary.md``: the question, the answers by topic, the tables, how to read them."""
  lines = [f"# {name}: {findings.question}", "", "## Answer"]
  topic = None
  for answer in findings.answers:
    if answer.topic != topic:
      topic = answer.topic
      lines += ["", f"### {topic}", ""] if topic else [""]
    lines.append(f"- {answer.render()}")
  for table in findings.tables:
    lines += ["", f"## {table.title}", ""]
    lines += [table.note, ""] if table.note else []
    lines.append(markdown_table(table.frame))
  notes = ["Intervals are 95%, written value [low, high]; pp = percentage points."]
  lines += ["", "## How to read this", "", *(f"- {note}" for note in (*findings.notes, *notes))]
  files = [f"`{plot}`" for plot in findings.plots]
  if files:
    lines += ["", "Plots: " + ", ".join(files) + "."]
  if findings.data:
    lines += ["", "Data: " + ", ".join(f"`{name}.csv`" for name in findings.data) + "."]
  lines += ["", *reproduce]
  return "\n".join(lines).rstrip() + "\n"


def to_json(findings: Findings, *, name: str, record: Mapping[str, Any] | None = None) -> str:
  """``findings.json``: the same content as the summary, as data; ``record`` adds the run's context."""
  content = {
      "study": name,
      "question": findings.question,
      "answers": [
          {"text": answer.render(), "topic": answer.topic, "verdict": answer.verdict,
           "headline": answer in findings.headlines,
           "estimates": [estimate.record() for estimate in answer.estimates]}
          for answer in findings.answers],
      "tables": [
          {"title": table.title, "note": table.note, "columns": [str(c) for c in table.frame.columns],
           "rows": [[_json_cell(value) for value in row] for row in table.frame.itertuples(index=False)]}
          for table in findings.tables],
      "notes": list(findings.notes),
      "plots": list(findings.plots),
      "data": [f"{name}.csv" for name in findings.data],
      **({"context": dict(record)} if record else {}),
  }
  return json.dumps(content, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _json_cell(value: Any) -> Any:
  if isinstance(value, Estimate):
    return value.record()
  if hasattr(value, "item"):  # a numpy scalar
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def from_json(text: str) -> dict[str, Any]:
  """Reads ``findings.json`` back; a ``ValueError`` names what is missing.

  Examples:
    >>> found = Findings("Q?", (Answer("a {}", (Estimate(0.5, 0.4, 0.6, "percent"),)),))
    >>> from_json(to_json(found, name="demo"))["answers"][0]["text"]
    'a 50.0% [40.0, 60.0]'
  """
  content = json.loads(text)
  missing = [key for key in ("study", "question", "answers") if key not in content]
  if missing:
    raise ValueError(f"findings.json lacks {', '.join(missing)}.")
  return content


def reproduce_lines(context: Mapping[str, Any]) -> list[str]:
  """A summary's closing "Reproduce" section, from :func:`research.experiment.context`.

  Examples:
    >>> for line in reproduce_lines({"command": "python -m research demo", "machine": "CPU",
    ...                              "runs": 6, "seeds": "0..2", "wall_seconds": 12.3,
    ...                              "training_seconds": 10.0, "settings": {"study": "demo"}}):
    ...   print(line)
    ## Reproduce
    <BLANKLINE>
    - command: `python -m research demo`
    - machine: CPU
    - runs: 6 (seeds 0..2)
    - wall time of this call: 12.3 s (training 10.0 s, summed over every trained program of this folder (grids.csv))
    - settings: `{'study': 'demo'}`
  """
  return [
      "## Reproduce", "",
      f"- command: `{context['command']}`",
      f"- machine: {context['machine']}",
      f"- runs: {context['runs']} (seeds {context['seeds']})",
      f"- wall time of this call: {context['wall_seconds']:.1f} s (training"
      f" {context['training_seconds']:.1f} s, summed over every trained program of this"
      " folder (grids.csv))",
      f"- settings: `{context['settings']}`",
      *([f"- repaired by this call: {len(context['repaired'])} damaged row(s) dropped, their runs"
         f" trained again ({'; '.join(context['repaired'][:5])})"] if context.get("repaired") else []),
  ]
