"""Compliance views of a fills ledger: day trades, pattern-day-trader test, settlement dates,
trades per day and per week. Pure functions of the fills of ONE account.

Business days are XNYS sessions (`core.calendar`). The trade date of a fill is its New York
calendar date, or the next session when that date is not one.

Day-trade counting (FINRA Rule 4210(f)(8)(B), interpretation per Regulatory Notice 21-13,
"change of direction" method): per symbol and trade date, walking the fills in execution
order, a fill that opens or adds to a position (a buy when flat or long, a sell when flat or
short) marks the start of a day trade; the next fill that day that reduces the position (a sale
of a long, a purchase covering a short) completes it, and one day trade is counted. Further
closing fills count nothing until something is opened again. Examples (FINRA's):
buy, buy, sell → 1; buy, sell, buy, sell → 2; buy, sell, sell, sell → 1. A long held overnight
and sold before any new purchase that day is not a day trade; once a purchase was made that day,
a later sale counts even if it could be matched to the overnight shares (no FIFO). A fill that
flips the position closes (possibly completing a day trade) and then opens. Positions include
strategies netted and splits applied. The notice also allows counting per opening transaction;
that alternative is not implemented.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.fills import Fill, Split, execution_timeline, single_account

ZERO = Decimal(0)

# (first trade date, business days to settlement). Exchange Act Rule 15c6-1: T+3 from
# 1995-06-07, T+2 from 2017-09-05, T+1 from 2024-05-28.
SETTLEMENT_CYCLES: tuple[tuple[dt.date, int], ...] = (
    (dt.date(1995, 6, 7), 3),
    (dt.date(2017, 9, 5), 2),
    (dt.date(2024, 5, 28), 1),
)


def trade_date(instant: dt.datetime) -> dt.date:
    """The session a fill at `instant` trades on: its New York date, or the next session."""
    day = calendar.session_of(pd.Timestamp(instant))
    if calendar.is_session(day):
        return day
    return calendar.sessions(day, day + dt.timedelta(days=10))[0]


def settlement_cycle(day: dt.date) -> int:
    """Business days from trade date `day` to settlement (1, 2 or 3; see `SETTLEMENT_CYCLES`)."""
    cycles = [days for start, days in SETTLEMENT_CYCLES if start <= day]
    if not cycles:
        raise ValueError(
            f"no settlement cycle known for trade date {day} (known from {SETTLEMENT_CYCLES[0][0]})"
        )
    return cycles[-1]


def settlement_date(instant: dt.datetime) -> dt.date:
    """Settlement date of a fill at `instant`: its trade date plus the cycle's XNYS sessions.

    Regular-way settlement only. Bank holidays on which the exchange is open (e.g. Columbus Day)
    are treated as business days; the clearing house may not settle on them.
    """
    day = trade_date(instant)
    cycle = settlement_cycle(day)
    later = calendar.sessions(day + dt.timedelta(days=1), day + dt.timedelta(days=7 * cycle + 14))
    return later[cycle - 1]


def _transaction_key(fill: Fill) -> str:
    """One trade per order: partial fills of an order are one trade; no order id, one fill."""
    return f"order:{fill.order_id}" if fill.order_id else f"exec:{fill.exec_id}"


@dataclass(frozen=True)
class DayTrade:
    """One day trade: the first opening fill of the run and the fill that completed it."""

    account: str | None
    symbol: str
    session: dt.date
    open_time: dt.datetime
    close_time: dt.datetime
    open_exec_id: str
    close_exec_id: str


def day_trades(fills: Iterable[Fill], splits: Iterable[Split] = ()) -> list[DayTrade]:
    """Every day trade of one account's fills, in the order they were completed.

    Counting follows the module docstring. `splits` keep position quantities right across a
    split (otherwise selling 40 shares after a 4:1 split of 10 would look like a flip).
    """
    fills = list(fills)
    account = single_account(fills, "day_trades")
    position: dict[str, Decimal] = defaultdict(Decimal)
    opened: dict[str, tuple[dt.date, Fill] | None] = {}
    found: list[DayTrade] = []
    for event in execution_timeline(fills, splits):
        if isinstance(event, Split):
            position[event.symbol] *= event.ratio
            continue
        symbol, session = event.symbol, trade_date(event.timestamp)
        before = position[symbol]
        run = opened.get(symbol)
        if run is not None and run[0] != session:
            run = None
        reduces = before != 0 and (before > 0) != (event.side.sign > 0)
        if reduces and run is not None:
            found.append(
                DayTrade(
                    account=account,
                    symbol=symbol,
                    session=session,
                    open_time=run[1].timestamp,
                    close_time=event.timestamp,
                    open_exec_id=run[1].exec_id,
                    close_exec_id=event.exec_id,
                )
            )
            run = None
        position[symbol] = before + event.signed_qty
        opens = not reduces or event.qty > abs(before)
        if opens and run is None:
            run = (session, event)
        opened[symbol] = run
    return found


# ---------------------------------------------------------------------------------------------
# Pattern day trader


@dataclass(frozen=True)
class PdtRuleSet:
    """A pattern-day-trader regime, in force from `effective` (a trade date) on.

    When `designates_pattern_day_traders`, an account is one if, over the last `window_sessions`
    sessions, it made at least `min_day_trades` day trades AND day trades were MORE than
    `min_day_trade_share` of all its trades. `minimum_equity` is the equity such an account must
    keep (informational here). Every parameter is configurable: build your own rule sets.
    """

    name: str
    effective: dt.date
    designates_pattern_day_traders: bool
    window_sessions: int = 5
    min_day_trades: int = 4
    min_day_trade_share: Decimal = Decimal("0.06")
    minimum_equity: Decimal | None = Decimal(25000)
    note: str = ""


CLASSIC_PDT_RULES = PdtRuleSet(
    name="FINRA 4210(f)(8)(B) pattern day trader",
    effective=calendar.CALENDAR_START,
    designates_pattern_day_traders=True,
    note=(
        "4 or more day trades in 5 business days, more than 6% of the account's trades; "
        "$25,000 minimum equity. Registered from the calendar start: the rule's own 2001 "
        "start is not modelled."
    ),
)

INTRADAY_MARGIN_RULES = PdtRuleSet(
    name="FINRA 4210 intraday margin standard (SR-FINRA-2025-017)",
    effective=dt.date(2026, 6, 4),
    designates_pattern_day_traders=False,
    minimum_equity=None,
    note=(
        "Approved by the SEC in April 2026 (Release 34-105226); replaces the pattern-day-trader "
        "designation and its $25,000 minimum with intraday margin. The effective date "
        "2026-06-04 is as reported from FINRA's April 2026 notice, not verified against the "
        "notice itself, and firms may phase the change in until 2027-10-20: set the date your "
        "broker switches. The intraday margin calculation is NOT implemented; day trades are "
        "still counted for information."
    ),
)

DEFAULT_PDT_RULES: tuple[PdtRuleSet, ...] = (CLASSIC_PDT_RULES, INTRADAY_MARGIN_RULES)


def rule_set_on(day: dt.date, rules: Sequence[PdtRuleSet] = DEFAULT_PDT_RULES) -> PdtRuleSet:
    """The rule set in force on `day`: the one with the latest `effective` not after it."""
    in_force = [rule for rule in rules if rule.effective <= day]
    if not in_force:
        raise ValueError(f"no pattern-day-trader rule set in force on {day}")
    return max(in_force, key=lambda rule: rule.effective)


@dataclass(frozen=True)
class PdtStatus:
    """The pattern-day-trader test for one account on `as_of`, over the sessions
    `window_start`..`as_of` (the last `window_sessions` sessions up to `as_of`).

    `trades` counts orders (partial fills of one order are one trade). `day_trade_share` =
    day_trades / trades (None without trades). `meets_pdt_test` is False under a rule set that
    does not designate pattern day traders; `reason` says why in words.
    """

    as_of: dt.date
    rule_set: str
    window_start: dt.date
    day_trades: int
    trades: int
    day_trade_share: Decimal | None
    meets_pdt_test: bool
    reason: str


def pattern_day_trader_status(
    fills: Iterable[Fill],
    as_of: dt.date,
    splits: Iterable[Split] = (),
    rules: Sequence[PdtRuleSet] = DEFAULT_PDT_RULES,
) -> PdtStatus:
    """Whether one account's fills meet the pattern-day-trader test on session `as_of`.

    The rule set is the one in force on `as_of` (`rule_set_on`). This is the rolling test only:
    a designation, once made, lasts by the broker's policy, which is not modelled.
    """
    fills = list(fills)
    rule = rule_set_on(as_of, rules)
    window = calendar.sessions(as_of - dt.timedelta(days=7 * rule.window_sessions + 14), as_of)
    window = window[-rule.window_sessions :]
    start = window[0]
    counted = [trade for trade in day_trades(fills, splits) if start <= trade.session <= as_of]
    trades = {
        (trade_date(fill.timestamp), _transaction_key(fill))
        for fill in fills
        if start <= trade_date(fill.timestamp) <= as_of
    }
    share = Decimal(len(counted)) / len(trades) if trades else None
    if not rule.designates_pattern_day_traders:
        meets, reason = False, f"{rule.name} does not designate pattern day traders"
    else:
        enough = len(counted) >= rule.min_day_trades
        large = share is not None and share > rule.min_day_trade_share
        meets = enough and large
        reason = (
            f"{len(counted)} day trades in {len(window)} sessions from {start} "
            f"({'>=' if enough else '<'} {rule.min_day_trades}); "
            f"{len(counted)} of {len(trades)} trades "
            f"({'>' if large else '<='} {rule.min_day_trade_share:%})"
        )
    return PdtStatus(
        as_of=as_of,
        rule_set=rule.name,
        window_start=start,
        day_trades=len(counted),
        trades=len(trades),
        day_trade_share=share,
        meets_pdt_test=meets,
        reason=reason,
    )


# ---------------------------------------------------------------------------------------------
# Trade counts


@dataclass(frozen=True)
class TradeCount:
    """Activity of one trade date (`period` "day") or ISO week (`period` "week", `start` its
    Monday): `trades` = orders, `fills` = executions, `day_trades` completed in the period."""

    period: Literal["day", "week"]
    start: dt.date
    trades: int
    fills: int
    day_trades: int


@dataclass
class _Tally:
    orders: set[str] = field(default_factory=set)
    fills: int = 0
    day_trades: int = 0


def _periods(day: dt.date) -> list[tuple[dt.date, Literal["day", "week"]]]:
    return [(day, "day"), (day - dt.timedelta(days=day.weekday()), "week")]


def trade_counts(fills: Iterable[Fill], splits: Iterable[Split] = ()) -> list[TradeCount]:
    """Trades, fills and day trades per trade date and per ISO week (Monday start) of one
    account, sorted by start date (a week before its first day); periods without fills are
    omitted."""
    fills = list(fills)
    tallies: dict[tuple[dt.date, Literal["day", "week"]], _Tally] = defaultdict(_Tally)
    for fill in fills:
        for key in _periods(trade_date(fill.timestamp)):
            tallies[key].orders.add(_transaction_key(fill))
            tallies[key].fills += 1
    for trade in day_trades(fills, splits):
        for key in _periods(trade.session):
            tallies[key].day_trades += 1
    return [
        TradeCount(period, start, len(tally.orders), tally.fills, tally.day_trades)
        for (start, period), tally in sorted(
            tallies.items(), key=lambda item: (item[0][0], item[0][1] == "day")
        )
    ]
