"""Fills (executions) and splits: the records the portfolio ledger is built from.

Conventions
- Every quantity and price is a `decimal.Decimal` (fractional shares exist); no float touches
  them. `qty` is always positive, the direction is in `side`.
- `timestamp` is a timezone-aware `datetime` in UTC. In the CSV export a naive timestamp is New
  York time (the exchange's clock); an explicit offset or `Z` is honoured.
- Order of execution: fills are ordered by `(timestamp, sequence)`. `sequence` is the fill's
  0-based position in its source (the data row index in a CSV file), so fills stamped with the
  same instant keep the order they had in the file.
- `exec_id` identifies an execution within one account. When the CSV export has no exec_id for a
  row, one is derived (see `derived_exec_id`), so re-importing the same file yields the same ids.
- `strategy` is the book a fill belongs to; an empty or missing strategy is `DEFAULT_STRATEGY`.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import hashlib
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import normalize_symbol

DEFAULT_STRATEGY = "default"
NEW_YORK = ZoneInfo(calendar.NEW_YORK)
ZERO = Decimal(0)


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy (adds to a long, covers a short), -1 for a sell."""
        return 1 if self is Side.BUY else -1


def _utc(instant: dt.datetime, what: str) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} {instant.isoformat()} must be timezone-aware")
    return instant.astimezone(dt.UTC)


@dataclass(frozen=True)
class Fill:
    """One execution: `qty` shares of `symbol` bought or sold at `price`, paying `fee`.

    `fee` is the total charge for this execution in account currency (≥ 0). `order_id` groups
    the partial fills of one order (None when the source has no order ids). `account` is None
    when the source does not say (a CSV export for a single account).
    """

    timestamp: dt.datetime
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    exec_id: str
    fee: Decimal = ZERO
    order_id: str | None = None
    strategy: str = DEFAULT_STRATEGY
    account: str | None = None
    sequence: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", _utc(self.timestamp, f"fill {self.exec_id} time"))
        object.__setattr__(self, "symbol", normalize_symbol(self.symbol))
        problems = []
        if not (self.qty.is_finite() and self.qty > 0):
            problems.append(f"qty {self.qty} must be > 0")
        if not (self.price.is_finite() and self.price > 0):
            problems.append(f"price {self.price} must be > 0")
        if not (self.fee.is_finite() and self.fee >= 0):
            problems.append(f"fee {self.fee} must be >= 0")
        if not self.exec_id:
            problems.append("exec_id must not be empty")
        if problems:
            raise ValueError(f"fill {self.exec_id or '?'} {self.symbol}: " + "; ".join(problems))

    @property
    def signed_qty(self) -> Decimal:
        """+qty for a buy, -qty for a sell."""
        return self.qty * self.side.sign

    @property
    def order_key(self) -> tuple[dt.datetime, int]:
        """Execution order: timestamp, then position in the source."""
        return (self.timestamp, self.sequence)


def single_account(fills: Iterable[Fill], what: str) -> str | None:
    """The one account all `fills` belong to (None if unnamed); ValueError naming them if not."""
    accounts = {fill.account for fill in fills}
    if len(accounts) > 1:
        names = ", ".join(sorted(str(account) for account in accounts))
        raise ValueError(f"{what} needs the fills of one account, got accounts {names}")
    return accounts.pop() if accounts else None


@dataclass(frozen=True)
class Split:
    """A stock split of `numerator`:`denominator` (4:1 → 4 new shares for 1 old) at `effective`.

    From `effective` (UTC, inclusive) on, an open lot holds `qty × ratio` shares at
    `price / ratio`; its total cost and open time do not change. A reverse split is 1:10.
    """

    symbol: str
    effective: dt.datetime
    numerator: Decimal
    denominator: Decimal = field(default=Decimal(1))

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", normalize_symbol(self.symbol))
        object.__setattr__(self, "effective", _utc(self.effective, f"split {self.symbol}"))
        for name in ("numerator", "denominator"):
            value = getattr(self, name)
            if not (value.is_finite() and value > 0):
                raise ValueError(f"split {self.symbol}: {name} {value} must be > 0")

    @property
    def ratio(self) -> Decimal:
        """New shares per old share (4 for a 4:1 split, 0.1 for a 1:10 reverse split)."""
        return self.numerator / self.denominator

    @classmethod
    def on_ex_date(
        cls, symbol: str, ex_date: dt.date, numerator: Decimal, denominator: Decimal = Decimal(1)
    ) -> Split:
        """The split as of midnight New York time on its ex-date (before any trade that day)."""
        midnight = dt.datetime.combine(ex_date, dt.time(0), tzinfo=NEW_YORK)
        return cls(symbol, midnight, numerator, denominator)


def execution_timeline(fills: Iterable[Fill], splits: Iterable[Split] = ()) -> list[Fill | Split]:
    """Fills by (timestamp, sequence), ties in the given order; each split placed before every
    fill at or after its effective instant."""
    timeline: list[tuple[dt.datetime, int, int, Fill | Split]] = [
        (split.effective, 0, 0, split) for split in splits
    ]
    timeline += [(fill.timestamp, 1, fill.sequence, fill) for fill in fills]
    timeline.sort(key=lambda item: item[:3])
    return [item[3] for item in timeline]


# ---------------------------------------------------------------------------------------------
# CSV export

REQUIRED_COLUMNS = ("timestamp", "symbol", "side", "qty", "price")
OPTIONAL_COLUMNS = ("fee", "order_id", "exec_id", "strategy")
CSV_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class FillsRowError:
    """One problem in a fills file: 1-based physical line number, column (None: whole row)."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class FillsFileError(ValueError):
    """A fills file has bad rows; carries every problem found (nothing of the file is usable)."""

    def __init__(self, source: str, errors: list[FillsRowError]):
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {error}" for error in errors)
        super().__init__(f"{source}: {len(errors)} problem(s), nothing imported:\n{lines}")


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _timestamp(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 timestamp (e.g. 2024-03-15 09:31:00 or "
            "2024-03-15T13:31:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=NEW_YORK)
    return parsed.astimezone(dt.UTC)


def _plain(value: Decimal) -> str:
    """Canonical text of a number: '10', '10.0' and '1E+1' all give '10'."""
    return format(value.normalize(), "f")


def fill_identity(
    *,
    timestamp: dt.datetime,
    symbol: str,
    side: Side,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    order_id: str | None,
    strategy: str,
) -> tuple[str, ...]:
    """The normalised fields that make two CSV rows "the same fill".

    UTC timestamp in ISO format, symbol, side, numbers without trailing zeros ('10', '10.00' and
    '1E+1' are equal), order id ('' when absent), strategy.
    """
    return (
        timestamp.astimezone(dt.UTC).isoformat(),
        symbol,
        side.value,
        _plain(qty),
        _plain(price),
        _plain(fee),
        order_id or "",
        strategy,
    )


def derived_exec_id(identity: tuple[str, ...], occurrence: int) -> str:
    """Deterministic id for a CSV row without exec_id: `csv-` + 32 hex digits of a SHA-256.

    The hash covers the row's `fill_identity` and `occurrence`: how many earlier rows of the
    same file have the same identity. Two identical fills in one file therefore get different
    ids (occurrence 0 and 1) instead of being merged; re-importing the file gives the same ids;
    appending rows to an export does not change the ids of the rows already there.
    """
    digest = hashlib.sha256("\x1f".join((*identity, str(occurrence))).encode()).hexdigest()
    return f"csv-{digest[:32]}"


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    if isinstance(source, os.PathLike):
        path = Path(source)
        try:
            return path.read_text(encoding="utf-8-sig"), str(path)
        except UnicodeDecodeError as error:
            problem = FillsRowError(1, None, f"not UTF-8 text ({error})")
            raise FillsFileError(str(path), [problem]) from None
    return source.removeprefix("\ufeff"), "<fills text>"


def _header(row: list[str], source: str) -> dict[str, int]:
    names = [name.strip().lower() for name in row]
    errors = []
    for name, count in Counter(names).items():
        if count > 1:
            errors.append(FillsRowError(1, name, "column appears more than once"))
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        errors.append(
            FillsRowError(
                1,
                None,
                f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(CSV_COLUMNS)}",
            )
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        errors.append(FillsRowError(1, None, f"missing required column(s) {', '.join(missing)}"))
    if errors:
        raise FillsFileError(source, errors)
    return {name: index for index, name in enumerate(names)}


@dataclass
class _Row:
    line: int
    index: int
    values: dict[str, str]


def _parse_row(
    row: _Row, account: str | None, errors: list[FillsRowError]
) -> dict[str, Any] | None:
    """The typed fields of one row, or None after appending its problems to `errors`."""
    values = row.values
    parsed: dict[str, Any] = {}
    found: list[FillsRowError] = []

    def field_of(column: str, parse: Callable[[str], object]) -> None:
        text = values.get(column, "")
        try:
            parsed[column] = parse(text)
        except ValueError as error:
            found.append(FillsRowError(row.line, column, str(error)))

    def required(text: str) -> str:
        if not text:
            raise ValueError("is empty")
        return text

    def positive(text: str) -> Decimal:
        value = _decimal(required(text))
        if value <= 0:
            raise ValueError(f"{text!r} must be > 0")
        return value

    def non_negative(text: str) -> Decimal:
        value = _decimal(text) if text else ZERO
        if value < 0:
            raise ValueError(f"{text!r} must be >= 0")
        return value

    def side(text: str) -> Side:
        try:
            return Side(required(text).lower())
        except ValueError:
            raise ValueError(f"{text!r} is not a side; expected buy or sell") from None

    field_of("timestamp", lambda text: _timestamp(required(text)))
    field_of("symbol", lambda text: normalize_symbol(required(text)))
    field_of("side", side)
    field_of("qty", positive)
    field_of("price", positive)
    field_of("fee", non_negative)
    if found:
        errors.extend(found)
        return None
    parsed["order_id"] = values.get("order_id") or None
    parsed["strategy"] = values.get("strategy") or DEFAULT_STRATEGY
    parsed["exec_id"] = values.get("exec_id") or None
    parsed["account"] = account
    return parsed


def parse_fills_csv(source: str | os.PathLike[str], *, account: str | None = None) -> list[Fill]:
    """Every fill of a CSV export, ordered by (timestamp, file order); all-or-nothing.

    `source` is a path (any `os.PathLike`, read as UTF-8, a BOM is ignored) or the CSV text
    itself (a `str`). The header is required; column names are case-insensitive; the columns are
    `CSV_COLUMNS`, of which `fee`, `order_id`, `exec_id` and `strategy` may be absent or empty
    (fee 0, no order id, derived exec id, `DEFAULT_STRATEGY`). `side` is buy or sell in any case.
    Blank lines are skipped. Every row is validated before anything is returned: if any row is
    bad, one `FillsFileError` lists each problem with its 1-based line number in the file and
    the column (non-positive or malformed numbers, unknown side, bad symbol or timestamp, wrong
    number of fields, an exec_id used twice in the file).
    """
    text, name = _read_source(source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader)
    except StopIteration:
        problem = FillsRowError(1, None, "empty file: a header is required")
        raise FillsFileError(name, [problem]) from None
    except csv.Error as error:
        problem = FillsRowError(1, None, f"unreadable CSV ({error})")
        raise FillsFileError(name, [problem]) from None
    columns = _header(header_row, name)

    errors: list[FillsRowError] = []
    rows: list[_Row] = []
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(FillsRowError(start, None, f"unreadable CSV ({error})"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            errors.append(
                FillsRowError(start, None, f"{len(cells)} fields, the header has {len(columns)}")
            )
            continue
        values = {column: cells[index].strip() for column, index in columns.items()}
        rows.append(_Row(line=start, index=len(rows), values=values))

    occurrences: Counter[tuple[str, ...]] = Counter()
    first_line_of_id: dict[str, int] = {}
    fills: list[Fill] = []
    for row in rows:
        parsed = _parse_row(row, account, errors)
        if parsed is None:
            continue
        if parsed["exec_id"] is None:
            identity = fill_identity(
                **{key: value for key, value in parsed.items() if key not in ("exec_id", "account")}
            )
            parsed["exec_id"] = derived_exec_id(identity, occurrences[identity])
            occurrences[identity] += 1
        exec_id = parsed["exec_id"]
        if exec_id in first_line_of_id:
            errors.append(
                FillsRowError(
                    row.line,
                    "exec_id",
                    f"{exec_id!r} already used on line {first_line_of_id[exec_id]}",
                )
            )
            continue
        first_line_of_id[exec_id] = row.line
        fills.append(Fill(sequence=row.index, **parsed))
    if errors:
        raise FillsFileError(name, sorted(errors, key=lambda error: error.line))
    return sorted(fills, key=lambda fill: fill.order_key)


SPLIT_COLUMNS = ("symbol", "date", "ratio")
_RATIO = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?::\s*([0-9]+(?:\.[0-9]+)?))?\s*$")


def parse_splits_csv(source: str | os.PathLike[str]) -> list[Split]:
    """Splits from a CSV with the columns `symbol,date,ratio`.

    `date` is the ex-date (the split applies from midnight New York time that day); `ratio` is
    new:old shares, `4:1` (or `4`) for a 4-for-1 split and `1:10` for a 1-for-10 reverse split.
    Every row is checked first; problems raise one `FillsFileError` naming each line.
    """
    text, name = _read_source(source)
    reader = csv.DictReader(io.StringIO(text))
    header = [c.strip().lower() for c in reader.fieldnames or []]
    if header != list(SPLIT_COLUMNS):
        raise FillsFileError(
            name, [FillsRowError(1, None, f"the header must be {','.join(SPLIT_COLUMNS)}")]
        )
    splits, errors = [], []
    for line, row in enumerate(reader, start=2):
        values = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not any(values.values()):
            continue
        try:
            day = dt.date.fromisoformat(values["date"])
        except ValueError:
            errors.append(
                FillsRowError(line, "date", f"{values['date']!r} is not a date (YYYY-MM-DD)")
            )
            continue
        ratio = _RATIO.match(values["ratio"])
        if not ratio:
            errors.append(
                FillsRowError(line, "ratio", f"{values['ratio']!r} is not new:old, e.g. 4:1")
            )
            continue
        try:
            splits.append(
                Split.on_ex_date(
                    values["symbol"], day, Decimal(ratio.group(1)), Decimal(ratio.group(2) or 1)
                )
            )
        except ValueError as error:
            errors.append(FillsRowError(line, None, str(error)))
    if errors:
        raise FillsFileError(name, errors)
    return splits
