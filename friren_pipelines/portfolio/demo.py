"""The demo account: a deterministic broker trading the synthetic daily bars, offline.

Rule (one book, strategy `sma_cross`, every symbol of the default universe), from
`DEMO_INCEPTION` on:
- after each session's close, the signal is long when the 5-session average close is more than
  1 % above the 20-session average, short when more than 1 % below, unchanged in between;
- on a change of signal the target is +round(10,000 / close) shares long or −round(5,000 /
  close) short (a long-to-short change is a single flipping fill); the target is flat on the
  session before a split (the synthetic source splits 2:1, 3:1 or 4:1; the demo never holds
  through one, so its lots need no split records);
- the next session, the difference to the target is bought or sold at that session's open, one
  minute after the open, in two executions (partial fills) when it is 2 shares or more;
- fees: USD 0.005 per share, at least USD 1.00 per execution, rounded to the cent.
Cash starts at `DEMO_INITIAL_CAPITAL`; equity = cash + Σ qty × close; buying power = cash.
The broker's clock stands at the session it is asked about: `positions(as_of)` holds every
fill up to the close of `as_of`, so it reconciles with a ledger synced through `as_of`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.fills import Fill, Side
from friren_pipelines.core.lots import Position, positions_from_fills
from friren_pipelines.portfolio.brokers import AccountValues

DEMO_ACCOUNT = "demo"
DEMO_INCEPTION = dt.date(2025, 1, 2)
DEMO_INITIAL_CAPITAL = Decimal(100_000)
DEMO_STRATEGY = "sma_cross"
FAST, SLOW, BAND = 5, 20, 0.01
LONG_BUDGET, SHORT_BUDGET = 10_000, 5_000
FEE_PER_SHARE, MINIMUM_FEE = Decimal("0.005"), Decimal("1.00")
CENT = Decimal("0.01")


def _fee(qty: int) -> Decimal:
    return max(MINIMUM_FEE, (FEE_PER_SHARE * qty).quantize(CENT, rounding=ROUND_HALF_UP))


def _price(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


@dataclass(frozen=True)
class DemoHistory:
    """The demo account from inception through `through`: fills and session-close values."""

    fills: tuple[Fill, ...]
    values: tuple[AccountValues, ...]


def _targets(daily: pd.DataFrame) -> pd.Series:
    """Target shares for each session (index: session), decided on the previous close."""
    close = daily["close"]
    fast, slow = close.rolling(FAST).mean(), close.rolling(SLOW).mean()
    split_next = (daily["open"].shift(-1) < close * 0.6).fillna(False)
    targets, signal, target = [], 0, 0
    for session in daily.index:
        if not pd.isna(slow[session]):
            wanted = 1 if fast[session] > slow[session] * (1 + BAND) else signal
            wanted = -1 if fast[session] < slow[session] * (1 - BAND) else wanted
            if wanted != signal:
                signal = wanted
                budget = LONG_BUDGET if signal > 0 else SHORT_BUDGET
                target = signal * round(budget / close[session])
        targets.append(0 if split_next[session] else target)
    # The target decided at a close is traded at the next open.
    return pd.Series([0, *targets[:-1]], index=daily.index, dtype="int64")


@lru_cache(maxsize=4)
def demo_history(symbols: tuple[str, ...], through: dt.date) -> DemoHistory:
    """Replay the rule over the synthetic bars (deterministic for given symbols and date)."""
    from friren_pipelines.sources.synthetic import SyntheticBarSource

    warm_up = DEMO_INCEPTION - dt.timedelta(days=60)
    if through < DEMO_INCEPTION:
        return DemoHistory((), ())
    bars = SyntheticBarSource().fetch_bars(list(symbols), Timeframe.DAY1, warm_up, through)
    sessions = calendar.sessions(DEMO_INCEPTION, through)
    fills: list[Fill] = []
    closes: dict[str, pd.Series] = {}
    for symbol, rows in bars.groupby("symbol"):
        daily = rows.set_index("session_date").sort_index()
        closes[str(symbol)] = daily["close"]
        targets = _targets(daily)
        position = 0
        for session in sessions:
            if session not in daily.index:
                continue
            change = int(targets[session]) - position
            if change:
                fills += _executions(str(symbol), session, change, float(daily["open"][session]))
                position += change
    return DemoHistory(tuple(fills), tuple(_values(fills, closes, sessions)))


def _executions(symbol: str, session: dt.date, change: int, open_price: float) -> list[Fill]:
    opened, _ = calendar.session_bounds(session)
    at = (opened + pd.Timedelta(minutes=1)).to_pydatetime()
    side = Side.BUY if change > 0 else Side.SELL
    qty = abs(change)
    parts = [qty] if qty < 2 else [qty // 2, qty - qty // 2]
    order = f"demo-{symbol}-{session.isoformat()}"
    return [
        Fill(
            timestamp=at,
            symbol=symbol,
            side=side,
            qty=Decimal(part),
            price=_price(open_price),
            exec_id=f"{order}-{index + 1}",
            fee=_fee(part),
            order_id=order,
            strategy=DEMO_STRATEGY,
            account=DEMO_ACCOUNT,
            sequence=index,
        )
        for index, part in enumerate(parts)
    ]


def _values(
    fills: Sequence[Fill], closes: dict[str, pd.Series], sessions: Sequence[dt.date]
) -> list[AccountValues]:
    from friren_pipelines.core.compliance import trade_date

    by_day: dict[dt.date, list[Fill]] = {}
    for fill in fills:
        by_day.setdefault(trade_date(fill.timestamp), []).append(fill)
    cash, previous = DEMO_INITIAL_CAPITAL, DEMO_INITIAL_CAPITAL
    shares: dict[str, Decimal] = {}
    values = []
    for session in sessions:
        for fill in by_day.get(session, []):
            cash -= fill.signed_qty * fill.price + fill.fee
            shares[fill.symbol] = shares.get(fill.symbol, Decimal(0)) + fill.signed_qty
        marked = {s: q * _price(float(closes[s][session])) for s, q in shares.items() if q}
        long_value = sum((v for v in marked.values() if v > 0), Decimal(0))
        short_value = sum((v for v in marked.values() if v < 0), Decimal(0))
        equity = cash + long_value + short_value
        values.append(
            AccountValues(
                session_date=session,
                equity=equity,
                cash=cash,
                buying_power=cash,
                long_market_value=long_value,
                short_market_value=short_value,
                day_pnl=equity - previous,
                source="demo",
            )
        )
        previous = equity
    return values


class DemoBroker:
    """`Broker` for the demo account (see the module docstring)."""

    kind = "demo"
    account = DEMO_ACCOUNT

    def __init__(self, symbols: Sequence[str]):
        self._symbols = tuple(sorted(symbols))

    def _history(self, through: dt.date) -> DemoHistory:
        return demo_history(self._symbols, min(through, calendar.calendar_end()))

    def fills(self, first: dt.date, last: dt.date) -> list[Fill]:
        from friren_pipelines.core.compliance import trade_date

        return [
            fill
            for fill in self._history(last).fills
            if first <= trade_date(fill.timestamp) <= last
        ]

    def positions(self, as_of: dt.date) -> dict[str, Position]:
        return positions_from_fills(self._history(as_of).fills)

    def account_values(self, first: dt.date, last: dt.date) -> list[AccountValues]:
        return [v for v in self._history(last).values if first <= v.session_date <= last]
