"""Recorded rollouts: both sides' data over time in one table (CSV or Parquet), for replay.

The table (README.md, "Recorded rollouts") has the columns ``time`` (RFC 3339 with a time
zone, or epoch seconds; the end of the interval the row covers), ``side`` (``baseline`` or
``canary``) and ``metric``, then per row one kind of data: ``bad`` and ``total`` (RATIO),
``value`` (VALUES; several rows per time are fine, e.g. one per pod) or ``le`` and
``count`` (HISTOGRAM: the per-interval increase of each cumulative bucket, ``+Inf``
included). Rows of one metric, side and time add up (per-pod rows). An optional ``pod``
column names the pod a row's counts come from: RATIO rows that name their pods are kept per
pod (the overdispersion is then estimated from the baseline's pods); a metric's side either
names a pod on every row or on none. Other columns are ignored.

Bad rows are reported together, one :class:`~gatekeeper.errors.FieldViolation` per line
(``line 17``: the header is line 1; Parquet files say ``row 17``, the first data row being
row 1), in an :class:`~gatekeeper.errors.InvalidArgument`. Missing data is no error: a
file without canary rows is a silent canary, judged INCONCLUSIVE.

:class:`RecordedRollout` cuts the judge's series for any window of analysis intervals;
:meth:`RecordedRollout.grid` lays every metric on a window's grid once, so that a replay
takes its cumulative looks as prefixes of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from gatekeeper.errors import FieldViolation, InvalidArgument
from gatekeeper.sources.base import Window
from gatekeeper.sources.checks import MAX_COUNT
from gatekeeper.stats.model import (
    MAX_VALUE_MAGNITUDE,
    BoolArray,
    FloatArray,
    HistogramSeries,
    MetricData,
    MetricSettings,
    PodCounts,
    RatioSeries,
    Series,
)
from gatekeeper.stats.results import MetricKind

ObjectArray = NDArray[np.object_]
IntArray = NDArray[np.int64]

SIDES = ("baseline", "canary")
KEYS = ("time", "side", "metric")
#: The data columns of each kind.
KIND_COLUMNS = {
    MetricKind.RATIO: ("bad", "total"),
    MetricKind.VALUES: ("value",),
    MetricKind.HISTOGRAM: ("le", "count"),
}
COLUMNS = (*KEYS, "bad", "total", "value", "le", "count", "pod")
#: Violations reported one by one; the rest are counted in a last one.
MAX_VIOLATIONS = 100

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_DATA = "bad,total (RATIO) | value (VALUES) | le,count (HISTOGRAM)"
_LAYOUT = f"time, side, metric and {_DATA}"
_INF = ("+inf", "inf")


def parse_time(text: str) -> float:
    """Unix seconds of an RFC 3339 time (``2024-05-01T12:00:00Z``) or of epoch seconds.

    Raises
    ------
    ValueError
        When ``text`` is neither; RFC 3339 needs a time zone (``Z`` or ``+02:00``).
    """
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        value = math.nan
        if _RFC3339.match(stripped):
            return float(pd.Timestamp(stripped).timestamp())
    if not math.isfinite(value):
        raise ValueError(
            f"must be RFC 3339 with a time zone (2024-05-01T12:00:00Z) or epoch seconds, "
            f"got {text!r}"
        )
    return value


# --- reading and validation ---------------------------------------------------------------


class _Problems:
    """Problems of the table's rows, collected per row position."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = labels
        self.by_row: dict[int, list[str]] = {}

    def row(self, row: int, message: str) -> None:
        """Note a problem of one row."""
        self.by_row.setdefault(row, []).append(message)

    def add(self, mask: Iterable[bool], message: str | Callable[[int], str]) -> None:
        """Note ``message`` (or ``message(row)``) for every row where ``mask`` holds."""
        for row in np.flatnonzero(np.fromiter(mask, dtype=bool)):
            self.row(int(row), message if isinstance(message, str) else message(int(row)))

    def raise_any(self, origin: str) -> None:
        """Raise every problem as an InvalidArgument, one violation per line."""
        if not self.by_row:
            return
        rows = sorted(self.by_row)
        found = [
            FieldViolation(self.labels[row], "; ".join(self.by_row[row]))
            for row in rows[:MAX_VIOLATIONS]
        ]
        if len(rows) > MAX_VIOLATIONS:
            more = len(rows) - MAX_VIOLATIONS
            found.append(FieldViolation(origin, f"and {more} more bad rows"))
        raise InvalidArgument(found)


def _text(column: pd.Series) -> pd.Series:
    """The column as stripped text, NA where empty."""
    texts = column.astype("string").str.strip()
    return texts.mask(texts == "")


def _numbers(column: pd.Series) -> tuple[FloatArray, BoolArray]:
    """Numbers of a column and where a present cell is not a number."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = column.to_numpy(dtype=float, na_value=math.nan)
        return numbers, np.zeros(len(column), dtype=bool)
    texts = _text(column)
    numbers = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float, na_value=math.nan)
    literal_nan = texts.str.lower().isin(["nan"]).fillna(False).to_numpy(dtype=bool)
    wrong = texts.notna().to_numpy(dtype=bool) & np.isnan(numbers) & ~literal_nan
    return numbers, wrong


def _bounds(column: pd.Series) -> tuple[FloatArray, BoolArray]:
    """Bucket bounds (``+Inf`` accepted) and where a present cell is not one."""
    if pd.api.types.is_numeric_dtype(column):
        bounds = column.to_numpy(dtype=float, na_value=math.nan)
        return bounds, np.zeros(len(column), dtype=bool)
    texts = _text(column)
    infinite = texts.str.lower().isin(_INF).fillna(False).to_numpy(dtype=bool)
    bounds = pd.to_numeric(texts.mask(infinite), errors="coerce").to_numpy(
        dtype=float, na_value=math.nan
    )
    bounds[infinite] = math.inf
    wrong = texts.notna().to_numpy(dtype=bool) & np.isnan(bounds)
    return bounds, wrong


def _times(column: pd.Series) -> tuple[FloatArray, BoolArray]:
    """Unix seconds of a time column and where a present cell is not a time."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        stamps = pd.to_datetime(column, utc=True)  # Parquet timestamps without zone are UTC
        seconds = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        present = np.asarray(seconds.to_numpy(dtype=float, na_value=math.nan), dtype=np.float64)
        return present, np.zeros(len(column), dtype=bool)
    numbers, wrong = _numbers(column)
    if not wrong.any():
        return numbers, ~np.isfinite(numbers) & column.notna().to_numpy(dtype=bool)
    texts = _text(column)
    stamped = texts.str.match(_RFC3339).fillna(False).to_numpy(dtype=bool) & wrong
    if stamped.any():
        parsed = pd.to_datetime(texts[stamped], format="ISO8601", utc=True)
        numbers[stamped] = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    wrong = (wrong & ~stamped) | (np.isinf(numbers) & column.notna().to_numpy(dtype=bool))
    return numbers, wrong


@dataclass(frozen=True, slots=True, eq=False)
class _Parsed:
    """The columns of a table as arrays, and what is wrong with them."""

    times: FloatArray
    sides: ObjectArray
    metrics: ObjectArray
    numbers: dict[str, FloatArray]
    present: dict[str, BoolArray]
    unreadable: dict[str, BoolArray]


def _labels(column: pd.Series) -> ObjectArray:
    """Text cells as str, None where empty."""
    texts = _text(column)
    cells: ObjectArray = np.full(len(texts), None, dtype=object)
    present = texts.notna().to_numpy(dtype=bool)
    cells[present] = [str(text) for text in texts[present]]
    return cells


def _present(column: pd.Series) -> BoolArray:
    """Where a cell holds something (text other than blanks, or a number)."""
    if pd.api.types.is_numeric_dtype(column):
        return column.notna().to_numpy(dtype=bool)
    return _text(column).notna().to_numpy(dtype=bool)


def _parse(table: pd.DataFrame, problems: _Problems) -> _Parsed:
    times, wrong_time = _times(table["time"])
    problems.add(table["time"].isna(), "time: missing")
    problems.add(
        wrong_time,
        lambda r: (
            "time: must be RFC 3339 with a time zone (2024-05-01T12:00:00Z) or epoch "
            f"seconds, got {_shown(table['time'], r)}"
        ),
    )
    sides = _labels(table["side"])
    problems.add((s is None for s in sides), "side: missing; allowed: baseline, canary")
    problems.add(
        (s is not None and s not in SIDES for s in sides),
        lambda r: f"side: unknown side {sides[r]!r}; allowed: baseline, canary",
    )
    metrics = _labels(table["metric"])
    problems.add((m is None for m in metrics), "metric: missing")
    numbers, present, unreadable = {}, {}, {}
    for name in ("bad", "total", "value", "count", "le"):
        present[name] = _present(table[name])
        numbers[name], unreadable[name] = (
            _bounds(table[name]) if name == "le" else _numbers(table[name])
        )
        problems.add(unreadable[name], _not_a_number(name, table[name]))
    return _Parsed(times, sides, metrics, numbers, present, unreadable)


def _shown(column: pd.Series, row: int) -> str:
    """A cell as the file has it, quoted."""
    return repr(str(column.iloc[row]).strip())


def _not_a_number(name: str, column: pd.Series) -> Callable[[int], str]:
    if name == "le":
        return lambda r: f"le: not a bucket bound ({_shown(column, r)}); allowed: a number or +Inf"
    return lambda r: f"{name}: not a number ({_shown(column, r)})"


def _row_kinds(parsed: _Parsed, problems: _Problems) -> ObjectArray:
    """Each row's kind from the data columns it fills (None where that is unclear)."""
    kinds = np.full(parsed.times.size, None, dtype=object)
    touched = np.column_stack(
        [
            np.column_stack([parsed.present[c] for c in columns]).any(axis=1)
            for columns in KIND_COLUMNS.values()
        ]
    )
    alone = touched.sum(axis=1) == 1
    for index, (kind, columns) in enumerate(KIND_COLUMNS.items()):
        mine = touched[:, index] & alone
        complete = np.column_stack([parsed.present[c] for c in columns]).all(axis=1)
        kinds[mine & complete] = kind
        for row in np.flatnonzero(mine & ~complete):
            lacking = " and ".join(c for c in columns if not parsed.present[c][row])
            problems.row(int(row), f"missing {lacking} ({' and '.join(columns)} go together)")
    problems.add(touched.sum(axis=1) == 0, f"no data: a row needs {_DATA}")
    problems.add(
        touched.sum(axis=1) > 1,
        f"mixes the data columns of several kinds; a row carries one of {_DATA}",
    )
    return kinds


def _check_values(parsed: _Parsed, kinds: ObjectArray, problems: _Problems) -> None:
    num = parsed.numbers
    ratio, hist = kinds == MetricKind.RATIO, kinds == MetricKind.HISTOGRAM
    for name, rows in (("bad", ratio), ("total", ratio), ("count", hist)):
        values = num[name]
        usable = np.isfinite(values) & (values >= 0) & (values <= MAX_COUNT)
        wrong = rows & ~usable & ~parsed.unreadable[name]
        for row in np.flatnonzero(wrong):
            problems.row(
                int(row),
                f"{name}: must be a finite count >= 0 and at most {MAX_COUNT:g} per interval, "
                f"got {values[row]:g}",
            )
    problems.add(
        ratio & (num["bad"] > num["total"]),
        lambda r: f"bad {num['bad'][r]:g} > total {num['total'][r]:g}",
    )
    problems.add(
        (kinds == MetricKind.VALUES)
        & (np.isinf(num["value"]) | (np.abs(num["value"]) > MAX_VALUE_MAGNITUDE)),
        lambda r: (
            f"value: must be NaN or finite within [-{MAX_VALUE_MAGNITUDE:g}, "
            f"{MAX_VALUE_MAGNITUDE:g}], got {num['value'][r]:g}"
        ),
    )


def _check_metric_kinds(
    frame: pd.DataFrame, problems: _Problems, labels: Sequence[str]
) -> dict[str, MetricKind]:
    """One kind per metric: rows of another kind than the metric's first row are reported."""
    kinds: dict[str, MetricKind] = {}
    for metric, rows in frame.groupby("metric", sort=False):
        kind: MetricKind = rows["kind"].iloc[0]
        kinds[str(metric)] = kind
        first = labels[int(rows["row"].iloc[0])]
        for row, other in rows.loc[rows["kind"] != kind, ["row", "kind"]].itertuples(index=False):
            problems.row(
                int(row),
                f"metric {metric} has {','.join(KIND_COLUMNS[kind])} rows ({kind.value}) from "
                f"{first}; this row has {','.join(KIND_COLUMNS[other])} ({other.value}): "
                "one kind per metric",
            )
    return kinds


def _check_pods(frame: pd.DataFrame, problems: _Problems, labels: Sequence[str]) -> None:
    """A metric's side names a pod on every row or on none (rows then add up per pod)."""
    named = frame["pod"].notna()
    for (metric, side), rows in frame.groupby(["metric", "side"], sort=False):
        with_pod = named[rows.index]
        if not with_pod.any() or with_pod.all():
            continue
        first = labels[int(rows.loc[with_pod, "row"].iloc[0])]
        for row in rows.loc[~with_pod, "row"]:
            problems.row(
                int(row),
                f"pod: missing; {metric}'s {side} rows name their pod from {first}: "
                "every row of a metric's side names its pod, or none does",
            )


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else f"{value:g}"


def _check_histograms(frame: pd.DataFrame, problems: _Problems, labels: Sequence[str]) -> None:
    """Each interval's buckets: the +Inf bucket, cumulative counts, one set of bounds."""
    hist = frame[frame["kind"] == MetricKind.HISTOGRAM]
    if not len(hist):
        return
    keys = ["time", "side", "metric"]
    summed = (
        hist.groupby([*keys, "le"], sort=True)
        .agg(count=("count", "sum"), row=("row", "min"))
        .reset_index()
    )
    group = summed.groupby(keys, sort=False).ngroup().to_numpy()
    cuts = np.flatnonzero(np.diff(group)) + 1
    bounds_of = np.split(summed["le"].to_numpy(dtype=float), cuts)
    counts_of = np.split(summed["count"].to_numpy(dtype=float), cuts)
    firsts = [int(rows.min()) for rows in np.split(summed["row"].to_numpy(), cuts)]
    names = summed[["side", "metric"]].to_numpy()[np.concatenate(([0], cuts))]
    expected: dict[tuple[str, str], tuple[tuple[float, ...], int]] = {}
    for bounds, counts, first, (side, metric) in zip(
        bounds_of, counts_of, firsts, names, strict=True
    ):
        if not math.isinf(bounds[-1]):
            problems.row(first, 'the buckets of this interval lack le="+Inf"')
            continue
        drops = np.flatnonzero(np.diff(counts) < 0)
        if drops.size:
            low, high = _bound(bounds[drops[0]]), _bound(bounds[drops[0] + 1])
            problems.row(first, f"buckets are not cumulative: le {high} counts fewer than le {low}")
        key = tuple(bounds.tolist())
        seen = expected.setdefault((str(side), str(metric)), (key, first))
        if seen[0] != key:
            problems.row(
                first,
                f"bucket bounds differ from those at {labels[seen[1]]}; one set of bounds per "
                "metric and side",
            )


def from_table(
    table: pd.DataFrame, *, origin: str = "table", row_label: str = "row", first_row: int = 1
) -> RecordedRollout:
    """Validate a recorded rollout table.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns as the module docstring says; other columns are ignored.
    origin : str
        What the table came from, for messages (a file name).
    row_label, first_row : str, int
        How violations name a row: ``f"{row_label} {first_row + position}"``.

    Returns
    -------
    RecordedRollout

    Raises
    ------
    InvalidArgument
        With a violation ``columns`` for missing columns, else one per bad row.
    """
    missing = [name for name in KEYS if name not in table.columns]
    data_columns = [c for columns in KIND_COLUMNS.values() for c in columns]
    if missing or not any(c in table.columns for c in data_columns):
        named = ", ".join(missing) if missing else "every data column"
        raise InvalidArgument.single(
            "columns", f"{origin} lacks {named}; a recorded rollout has {_LAYOUT}"
        )
    table = table.reset_index(drop=True).reindex(columns=list(COLUMNS))
    kept = np.flatnonzero(~table.isna().all(axis=1).to_numpy(dtype=bool))  # blank lines
    table = table.iloc[kept].reset_index(drop=True)
    labels = [f"{row_label} {first_row + k}" for k in kept]
    problems = _Problems(labels)
    parsed = _parse(table, problems)
    kinds = _row_kinds(parsed, problems)
    _check_values(parsed, kinds, problems)
    problems.raise_any(origin)
    frame = pd.DataFrame(
        {
            "time": parsed.times,
            "side": parsed.sides,
            "metric": parsed.metrics,
            "kind": kinds,
            **{name: parsed.numbers[name] for name in ("bad", "total", "value", "le", "count")},
            "row": np.arange(len(table)),
            "pod": _labels(table["pod"]),
        }
    )
    kinds_of = _check_metric_kinds(frame, problems, labels)
    _check_pods(frame, problems, labels)
    _check_histograms(frame, problems, labels)
    problems.raise_any(origin)
    frame = frame.sort_values(["time", "row"], kind="stable")
    return RecordedRollout(frame.reset_index(drop=True), kinds_of, origin)


def read_recorded(path: str | Path) -> RecordedRollout:
    """Read a recorded rollout: Parquet when the name ends in ``.parquet``, CSV otherwise.

    ``path`` is given to pandas as it is, so a URL such as ``s3://bucket/a.parquet`` is read
    through fsspec where its packages (``s3fs``, ...) are installed.

    Raises
    ------
    InvalidArgument
        When the file cannot be read (field ``FILE``), lacks columns or has bad rows.
    """
    source = Path(path)
    try:
        if source.suffix == ".parquet":
            return from_table(pd.read_parquet(path), origin=source.name)
        table = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False
        )
    except (OSError, ValueError, ImportError) as exc:
        raise InvalidArgument.single("FILE", f"cannot read {path}: {_first_line(exc)}") from None
    return from_table(table, origin=source.name, row_label="line", first_row=2)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- the judge's series -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class GriddedSide:
    """One side of one metric on a window's grid, ready to be cut to its first points."""

    kind: MetricKind
    points: int
    #: RATIO (points, 2): bad, total; HISTOGRAM (points, buckets)
    counts: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    #: RATIO rows that name their pods: (points, pods, 2) bad, total per pod, and the names
    pods: PodCounts | None = None
    bounds: FloatArray = field(default_factory=lambda: np.zeros(0))  #: HISTOGRAM: upper bounds
    values: FloatArray = field(default_factory=lambda: np.zeros(0))  #: VALUES: the samples
    where: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  #: their points

    def upto(self, points: int) -> Series:
        """The side's series over the grid's first ``points`` points."""
        if self.kind is MetricKind.RATIO and self.pods is not None:
            table = self.pods
            return RatioSeries.from_pods(
                PodCounts(table.names, table.bad[:points].copy(), table.total[:points].copy())
            )
        if self.kind is MetricKind.RATIO:
            return RatioSeries(
                bad=np.ascontiguousarray(self.counts[:points, 0]),
                total=np.ascontiguousarray(self.counts[:points, 1]),
            )
        if self.kind is MetricKind.HISTOGRAM:
            return HistogramSeries(upper_bounds=self.bounds, counts=self.counts[:points].copy())
        return self.values[self.where < points].copy()

    def total(self, points: int) -> float:
        """RATIO: total events over the first ``points`` points (0 for other kinds)."""
        return float(self.counts[:points, 1].sum()) if self.kind is MetricKind.RATIO else 0.0

    def bad(self, points: int) -> float:
        """RATIO: bad events over the first ``points`` points (0 for other kinds)."""
        return float(self.counts[:points, 0].sum()) if self.kind is MetricKind.RATIO else 0.0


@dataclass(frozen=True, slots=True, eq=False)
class GriddedMetric:
    """One metric's settings and both sides on the grid."""

    settings: MetricSettings
    baseline: GriddedSide
    canary: GriddedSide
    notes: tuple[str, ...] = ()

    def upto(self, points: int) -> MetricData:
        """The metric's data over the grid's first ``points`` points."""
        return MetricData(
            self.settings,
            self.baseline.upto(points),
            self.canary.upto(points),
            notes=self.notes,
        )


@dataclass(frozen=True, slots=True, eq=False)
class Grid:
    """Every metric of an analysis on one window's grid."""

    window: Window
    metrics: tuple[GriddedMetric, ...]

    def upto(self, points: int) -> list[MetricData]:
        """Every metric's data from the window's start over its first ``points`` points."""
        return [metric.upto(points) for metric in self.metrics]


@dataclass(frozen=True, slots=True, eq=False)
class RecordedRollout:
    """A validated recorded rollout.

    ``rows`` holds one row per input row: ``time`` (Unix seconds), ``side``, ``metric``,
    ``kind`` (:class:`MetricKind`), the numbers, and ``row`` (its position in the input);
    ``kinds`` the kind of each metric in the file.
    """

    rows: pd.DataFrame
    kinds: dict[str, MetricKind]
    origin: str = "table"

    @property
    def first_time(self) -> float:
        """The earliest row's time (NaN when there is no row)."""
        return float(self.rows["time"].min()) if len(self.rows) else math.nan

    @property
    def last_time(self) -> float:
        """The latest row's time (NaN when there is no row)."""
        return float(self.rows["time"].max()) if len(self.rows) else math.nan

    @property
    def resolution(self) -> float | None:
        """The smallest spacing of distinct row times (None with fewer than two)."""
        times = np.unique(self.rows["time"].to_numpy(dtype=float))
        gaps = np.diff(times)
        gaps = gaps[gaps > 1e-6]
        return float(gaps.min()) if gaps.size else None

    @property
    def silent_canary(self) -> bool:
        """Whether the file has no canary row at all."""
        return not bool((self.rows["side"] == "canary").any())

    def window(
        self, *, interval_seconds: float, start: float | None = None, end: float | None = None
    ) -> Window:
        """The whole steps of ``interval_seconds`` from ``start`` that reach ``end``.

        ``start`` defaults to the first row's time less the recording's resolution (a row's
        time is the end of the interval it covers), ``end`` to the last row's time.

        Raises
        ------
        InvalidArgument
            When the table has no row and no ``start``/``end``, or ``end`` is not after
            ``start``.
        """
        if not len(self.rows) and (start is None or end is None):
            raise InvalidArgument.single("FILE", f"{self.origin} has no data row")
        first = self.first_time - (self.resolution or interval_seconds)
        begin = first if start is None else start
        until = self.last_time if end is None else end
        if not until > begin:
            raise InvalidArgument.single(
                "end", f"must be after the start {begin:.3f}, got {until:.3f}"
            )
        points = max(1, math.ceil((until - begin) / interval_seconds - 1e-9))
        return Window(begin, begin + points * interval_seconds, interval_seconds)

    def grid(self, metrics: Sequence[MetricSettings], *, window: Window) -> Grid:
        """Lay every metric on ``window``'s grid (rows outside the window are left out).

        Raises
        ------
        InvalidArgument
            When a metric's kind in the file is not the one it is judged as.
        """
        mismatched = [
            FieldViolation(
                f"metric {m.name}",
                f"judged as {m.kind.value}, but {self.origin} has "
                f"{','.join(KIND_COLUMNS[self.kinds[m.name]])} rows for it "
                f"({self.kinds[m.name].value})",
            )
            for m in metrics
            if m.name in self.kinds and self.kinds[m.name] is not m.kind
        ]
        if mismatched:
            raise InvalidArgument(mismatched)
        index = np.ceil((self.rows["time"].to_numpy(dtype=float) - window.start) / window.step)
        point = index.astype(int) - 1
        inside = (point >= 0) & (point < window.points)
        rows = self.rows.assign(point=point)[inside]
        return Grid(window, tuple(self._metric(settings, rows, window) for settings in metrics))

    def metric_data(self, metrics: Sequence[MetricSettings], *, window: Window) -> list[MetricData]:
        """Every metric's data over ``window``, as the judge takes it."""
        return self.grid(metrics, window=window).upto(window.points)

    def _metric(
        self, settings: MetricSettings, rows: pd.DataFrame, window: Window
    ) -> GriddedMetric:
        mine = rows[rows["metric"] == settings.name]
        notes: tuple[str, ...] = ()
        if settings.name not in self.kinds:
            known = ", ".join(sorted(self.kinds)) or "none"
            notes = (f"no rows for {settings.name} in {self.origin} (metrics there: {known})",)
        sides = [_gridded(settings, mine[mine["side"] == side], window.points) for side in SIDES]
        return GriddedMetric(settings, sides[0], sides[1], notes)


def _gridded(settings: MetricSettings, rows: pd.DataFrame, points: int) -> GriddedSide:
    point = rows["point"].to_numpy(dtype=np.int64)
    if settings.kind is MetricKind.RATIO:
        counts = np.zeros((points, 2))
        np.add.at(counts[:, 0], point, rows["bad"].to_numpy(dtype=float))
        np.add.at(counts[:, 1], point, rows["total"].to_numpy(dtype=float))
        return GriddedSide(settings.kind, points, counts=counts, pods=_pod_grid(rows, points))
    if settings.kind is MetricKind.HISTOGRAM:
        les = rows["le"].to_numpy(dtype=float)
        bounds = np.unique(les) if les.size else np.array([math.inf])
        counts = np.zeros((points, bounds.size))
        np.add.at(counts, (point, np.searchsorted(bounds, les)), rows["count"].to_numpy(float))
        return GriddedSide(settings.kind, points, counts=counts, bounds=bounds)
    return GriddedSide(settings.kind, points, values=rows["value"].to_numpy(float), where=point)


def _pod_grid(rows: pd.DataFrame, points: int) -> PodCounts | None:
    """RATIO rows per pod on the grid, or None when the rows name no pod."""
    if rows.empty or rows["pod"].isna().any():
        return None
    names, column = np.unique(rows["pod"].to_numpy(dtype=str), return_inverse=True)
    point = rows["point"].to_numpy(dtype=np.int64)
    bad, total = np.zeros((points, names.size)), np.zeros((points, names.size))
    np.add.at(bad, (point, column), rows["bad"].to_numpy(dtype=float))
    np.add.at(total, (point, column), rows["total"].to_numpy(dtype=float))
    return PodCounts(tuple(str(n) for n in names), bad, total)
