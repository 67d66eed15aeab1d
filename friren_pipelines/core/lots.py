"""Lot matching: closed lots with realized P&L, open lots, net positions and their lifecycle.

Conventions
- Books: fills are matched per (account, symbol, strategy), because a trader reads P&L per
  strategy book; two strategies trading the same symbol never close each other's lots. The
  broker only sees the net position per symbol; `positions_from_fills` gives that net view.
- Sides: a buy with no short open opens (or adds to) a long; a sell with no long open opens (or
  adds to) a short. A fill larger than the open quantity on the other side closes all of it and
  opens the remainder on its own side (a flip), in one step.
- FIFO (default): a closing fill closes the oldest open lots first. One closed lot is reported
  per (opening fill, closing fill) pair, so partial fills give partial lots.
- Average cost: each book holds one pooled lot. A fill that adds to the position adds its
  quantity, cost and opening fee to the pool; a reducing fill closes quantity at the pool's
  average price. A closed lot is reported per closing fill; its `open_time` and `open_exec_id`
  are those of the fill that opened the position from flat, its `open_price` is the pool's
  average price at the close.
- Fees: a lot carries the fees of its opening and closing fills pro rata by quantity
  (a 100-share fill with a $1 fee gives $0.30 to a 30-share lot). `realized_pnl` is net of them:
  long `qty × (close − open) − fees`, short `qty × (open − close) − fees`. Pro-rating takes the
  remainder, so the pieces of a fee always add up to the fee exactly.
- Splits: from a split's effective instant on, every open lot of the symbol (all books) holds
  `qty × ratio` at `price / ratio`; cost and open time are unchanged. Quantities and prices of a
  lot that lived through a split are reported in post-split shares. Fills stamped exactly at
  the effective instant are post-split.
- Precision: all arithmetic is Decimal in a context of `LEDGER_PRECISION` significant digits;
  nothing is rounded here. Results are exact except where a division does not terminate
  (a fee shared 1/3 : 2/3, a 3:1 split price), which keeps 34 significant digits; sum such
  values in a context of `LEDGER_PRECISION` digits and the pieces of a fee add up to it
  exactly. Storage rounds half-even to 18 decimal places (NUMERIC(38, 18), see
  `storage/tables.py`); rounding to the cent is for display only.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

from friren_pipelines.core.fills import Fill, Split, execution_timeline, single_account

LEDGER_PRECISION = 34  # significant digits, as IEEE 754 decimal128
ZERO = Decimal(0)
Method = Literal["fifo", "average"]
METHODS: tuple[Method, ...] = ("fifo", "average")


class PositionSide(enum.StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is PositionSide.LONG else -1


@dataclass(frozen=True)
class Lot:
    """What every lot is: a quantity of one book (account, symbol, strategy) opened at a time."""

    account: str | None
    symbol: str
    strategy: str
    side: PositionSide
    qty: Decimal
    open_time: dt.datetime


@dataclass(frozen=True)
class ClosedLot(Lot):
    """Quantity opened by one fill and closed by another, with its realized P&L.

    Money in account currency, exact Decimals. `open_price`/`close_price` are per share;
    `fees` = the lot's pro-rata share of the opening fee plus of the closing fee;
    `realized_pnl` is net of `fees`; `holding_seconds` is whole seconds from open to close.
    """

    close_time: dt.datetime
    open_price: Decimal
    close_price: Decimal
    fees: Decimal
    realized_pnl: Decimal
    holding_seconds: int
    open_exec_id: str
    close_exec_id: str


@dataclass(frozen=True)
class OpenLot(Lot):
    """Quantity still open: `cost` = qty × open_price (what was paid, or received for a short);
    `fees` = the opening fee share of the remaining quantity, not yet in any realized P&L."""

    open_price: Decimal
    cost: Decimal
    fees: Decimal
    open_exec_id: str


@dataclass(frozen=True)
class LotsResult:
    """Closed lots in close order (then open order), open lots per book in open order."""

    closed: list[ClosedLot]
    open: list[OpenLot]


@dataclass
class _Lot:
    """A mutable open lot while matching."""

    side: PositionSide
    qty: Decimal
    cost: Decimal
    fee: Decimal
    open_time: dt.datetime
    open_exec_id: str
    strategy: str

    def take(self, qty: Decimal) -> tuple[Decimal, Decimal]:
        """Remove `qty` (≤ self.qty); return its (cost, fee) share, remainders kept exact."""
        if qty == self.qty:
            cost, fee = self.cost, self.fee
        else:
            cost, fee = self.cost * qty / self.qty, self.fee * qty / self.qty
        self.qty -= qty
        self.cost -= cost
        self.fee -= fee
        return cost, fee


@dataclass
class _FeeLeft:
    """The part of a fill's fee not yet allocated, shared pro rata by quantity."""

    qty: Decimal
    fee: Decimal

    def take(self, qty: Decimal) -> Decimal:
        share = self.fee if qty == self.qty else self.fee * qty / self.qty
        self.qty -= qty
        self.fee -= share
        return share


BookKey = tuple[str | None, str, str | None]  # (account, symbol, strategy or None)


def match_lots(
    fills: Iterable[Fill],
    splits: Iterable[Split] = (),
    method: Method = "fifo",
    *,
    per_strategy: bool = True,
) -> LotsResult:
    """Match fills into closed and open lots (see the module docstring for every convention).

    Fills may come in any order; they are processed by (timestamp, sequence), ties kept in the
    given order. With `per_strategy=False` there is one book per (account, symbol) across
    strategies and each lot keeps the strategy of its opening fill.
    """
    if method not in METHODS:
        raise ValueError(f"unknown lot method {method!r}; expected one of {', '.join(METHODS)}")
    books: dict[BookKey, deque[_Lot]] = defaultdict(deque)
    closed: list[ClosedLot] = []
    with localcontext(prec=LEDGER_PRECISION):
        for event in execution_timeline(fills, splits):
            if isinstance(event, Split):
                ratio = event.ratio
                for (_, symbol, _), lots in books.items():
                    if symbol == event.symbol:
                        for lot in lots:
                            lot.qty *= ratio
                continue
            key = (event.account, event.symbol, event.strategy if per_strategy else None)
            closed.extend(_apply(event, books[key], method))
        open_lots = [
            OpenLot(
                account=account,
                symbol=symbol,
                strategy=lot.strategy,
                side=lot.side,
                qty=lot.qty,
                open_time=lot.open_time,
                open_price=lot.cost / lot.qty,
                cost=lot.cost,
                fees=lot.fee,
                open_exec_id=lot.open_exec_id,
            )
            for (account, symbol, _), lots in books.items()
            for lot in lots
        ]
    return LotsResult(closed=closed, open=open_lots)


def _apply(fill: Fill, lots: deque[_Lot], method: Method) -> list[ClosedLot]:
    """Apply one fill to one book; return the lots it closes."""
    fee_left = _FeeLeft(fill.qty, fill.fee)
    remaining = fill.qty
    fill_side = PositionSide.LONG if fill.side.sign > 0 else PositionSide.SHORT
    closed: list[ClosedLot] = []
    while remaining > 0 and lots and lots[0].side is not fill_side:
        lot = lots[0]
        qty = min(remaining, lot.qty)
        cost, open_fee = lot.take(qty)
        close_fee = fee_left.take(qty)
        fees = open_fee + close_fee
        proceeds = qty * fill.price
        gross = (proceeds - cost) * lot.side.sign
        closed.append(
            ClosedLot(
                account=fill.account,
                symbol=fill.symbol,
                strategy=lot.strategy,
                side=lot.side,
                qty=qty,
                open_time=lot.open_time,
                close_time=fill.timestamp,
                open_price=cost / qty,
                close_price=fill.price,
                fees=fees,
                realized_pnl=gross - fees,
                holding_seconds=int((fill.timestamp - lot.open_time).total_seconds()),
                open_exec_id=lot.open_exec_id,
                close_exec_id=fill.exec_id,
            )
        )
        remaining -= qty
        if lot.qty == 0:
            lots.popleft()
    if remaining > 0:
        cost = remaining * fill.price
        fee = fee_left.take(remaining)
        if method == "average" and lots:
            pool = lots[0]
            pool.qty += remaining
            pool.cost += cost
            pool.fee += fee
        else:
            lots.append(
                _Lot(fill_side, remaining, cost, fee, fill.timestamp, fill.exec_id, fill.strategy)
            )
    return closed


# ---------------------------------------------------------------------------------------------
# Net positions and their lifecycle


@dataclass(frozen=True)
class Position:
    """A net position: `qty` signed (+ long, − short, never 0), `avg_entry_price` per share."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal

    @property
    def side(self) -> PositionSide:
        return PositionSide.LONG if self.qty > 0 else PositionSide.SHORT


def positions_from_fills(
    fills: Iterable[Fill], splits: Iterable[Split] = (), method: Method = "fifo"
) -> dict[str, Position]:
    """Net position per symbol across strategies, as the broker holds it; flat symbols omitted.

    One book per symbol (strategies netted), so this is what reconciles with the broker's
    quantity. The quantity does not depend on `method`; `avg_entry_price` does: under FIFO it
    is the cost of the remaining lots over their quantity, under average cost the pool's price.
    All fills must belong to one account (positions of different accounts do not net).
    """
    fills = list(fills)
    single_account(fills, "positions_from_fills")
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    with localcontext(prec=LEDGER_PRECISION):
        for lot in match_lots(fills, splits, method, per_strategy=False).open:
            qty, cost = totals.get(lot.symbol, (ZERO, ZERO))
            totals[lot.symbol] = (qty + lot.qty * lot.side.sign, cost + lot.cost)
        return {
            symbol: Position(symbol, qty, cost / abs(qty))
            for symbol, (qty, cost) in sorted(totals.items())
        }


class PositionEventKind(enum.StrEnum):
    OPEN = "open"  # flat → long or short
    INCREASE = "increase"  # same side, larger
    DECREASE = "decrease"  # same side, smaller
    CLOSE = "close"  # long or short → flat
    FLIP = "flip"  # long → short or short → long


@dataclass(frozen=True)
class PositionEvent:
    """What changed for one symbol between two position syncs.

    Quantities are signed (+ long, − short, 0 flat); `change` = current − previous. Average
    prices are None on the flat side. `side` is the side after the event, or the side that was
    closed for CLOSE.
    """

    symbol: str
    kind: PositionEventKind
    side: PositionSide
    previous_qty: Decimal
    current_qty: Decimal
    change: Decimal
    previous_avg_price: Decimal | None
    current_avg_price: Decimal | None


def position_events(
    previous: Mapping[str, Position], current: Mapping[str, Position]
) -> list[PositionEvent]:
    """Classify each symbol whose quantity differs between two syncs, sorted by symbol.

    A symbol absent from a mapping (or with qty 0) is flat. An unchanged quantity gives no
    event, even if the average price moved (a sale and re-purchase between two syncs cannot be
    told from the positions alone; the fills ledger has it).
    """
    events = []
    for symbol in sorted(set(previous) | set(current)):
        before, after = previous.get(symbol), current.get(symbol)
        old = before.qty if before else ZERO
        new = after.qty if after else ZERO
        if old == new:
            continue
        if old == 0:
            kind = PositionEventKind.OPEN
        elif new == 0:
            kind = PositionEventKind.CLOSE
        elif (old > 0) != (new > 0):
            kind = PositionEventKind.FLIP
        elif abs(new) > abs(old):
            kind = PositionEventKind.INCREASE
        else:
            kind = PositionEventKind.DECREASE
        defining = after if after and new else before
        assert defining is not None  # old != new, so one side holds a position
        events.append(
            PositionEvent(
                symbol=symbol,
                kind=kind,
                side=defining.side,
                previous_qty=old,
                current_qty=new,
                change=new - old,
                previous_avg_price=before.avg_entry_price if before and old else None,
                current_avg_price=after.avg_entry_price if after and new else None,
            )
        )
    return events
