"""Brokers: where fills, positions and account values come from.

Three implementations of `Broker`, chosen by FRIREN_BROKER (see `portfolio.resources`):
- `AlpacaBroker`: alpaca-py's `TradingClient` (paper or live). alpaca-py has no method for
  account activities, so FILL activities are read with the client's raw `get`, page by page
  (`page_token` = the last id of the previous page) until a page is empty or brings no new id,
  and de-duplicated by activity id. Portfolio history comes from its endpoint.
- `CsvBroker`: a fills export file (`core.fills.parse_fills_csv` layout); it knows no positions
  and no account values.
- `DemoBroker` (`portfolio.demo`): a deterministic account trading the synthetic bars.

Money is Decimal from the broker's strings. Alpaca sends portfolio-history values as JSON
numbers; they are read through `str(float)`, which gives back the shortest decimal text that
round-trips, i.e. the digits the broker sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from friren_pipelines.account.snapshot import AccountSnapshot
from friren_pipelines.config import redact
from friren_pipelines.core import calendar
from friren_pipelines.core.compliance import trade_date
from friren_pipelines.core.fills import Fill, Side, parse_fills_csv
from friren_pipelines.core.lots import Position

if TYPE_CHECKING:
    from friren_pipelines.account.broker import AlpacaConnection
    from friren_pipelines.account.rate_limit import RateLimiter

PAGE_SIZE = 100


class BrokerError(RuntimeError):
    """The broker did not deliver: the message names the request and why (never a key)."""


# The live account's balances that `AccountValues` carries, named as Alpaca's /v2/account body
# and `AccountSnapshot` name them.
LIVE_BALANCES = ("cash", "buying_power", "long_market_value", "short_market_value")


@dataclass(frozen=True, kw_only=True)
class AccountValues:
    """Account values at one session's close (or now, for the current session), USD.

    `day_pnl` = equity − previous session's equity. Fields the source does not have are None.
    """

    session_date: dt.date
    equity: Decimal
    cash: Decimal | None = None
    buying_power: Decimal | None = None
    long_market_value: Decimal | None = None
    short_market_value: Decimal | None = None
    day_pnl: Decimal | None = None
    source: str

    @classmethod
    def from_snapshot(cls, live: AccountSnapshot, session_date: dt.date) -> AccountValues:
        """The cached live account as the values of `session_date` (today's session)."""
        return cls(
            session_date=session_date,
            equity=live.equity,
            day_pnl=live.day_pl,
            source="live_account_stale" if live.stale else "live_account",
            **{name: getattr(live, name) for name in LIVE_BALANCES},
        )


class Broker(Protocol):
    """One brokerage account.

    `kind` is demo, csv or alpaca; `account` the label stored with its rows.
    `fills(first, last)`: executions whose trade date is in [first, last] (New York dates).
    `positions(as_of)`: net positions per symbol as the broker holds them, or None when the
    broker has no positions of its own (a CSV export). Alpaca answers with the current positions
    whatever `as_of`; the demo answers as of the close of session `as_of`.
    `account_values(first, last)`: one `AccountValues` per session in [first, last] that the
    broker can tell (history, plus the live account for today's session).
    """

    kind: str

    @property
    def account(self) -> str: ...

    def fills(self, first: dt.date, last: dt.date) -> list[Fill]: ...

    def positions(self, as_of: dt.date) -> dict[str, Position] | None: ...

    def account_values(self, first: dt.date, last: dt.date) -> list[AccountValues]: ...


def _day_window(first: dt.date, last: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[midnight New York of `first`, midnight New York after `last`) in UTC."""
    start = pd.Timestamp(first).tz_localize(calendar.NEW_YORK)
    end = pd.Timestamp(last + dt.timedelta(days=1)).tz_localize(calendar.NEW_YORK)
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def _in_dates(fill: Fill, first: dt.date, last: dt.date) -> bool:
    return first <= trade_date(fill.timestamp) <= last


# ---------------------------------------------------------------------------------------------
# CSV export


class CsvBroker:
    """A fills export as the broker: every fill of the file; no positions, no account values."""

    kind = "csv"

    def __init__(self, path: Path, account: str = "csv"):
        self._path = Path(path)
        self._account = account

    @property
    def account(self) -> str:
        return self._account

    def fills(self, first: dt.date, last: dt.date) -> list[Fill]:
        every = parse_fills_csv(self._path, account=self._account)
        return [fill for fill in every if _in_dates(fill, first, last)]

    def positions(self, as_of: dt.date) -> dict[str, Position] | None:
        return None

    def account_values(self, first: dt.date, last: dt.date) -> list[AccountValues]:
        return []


# ---------------------------------------------------------------------------------------------
# Alpaca


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BrokerError(f"{what}={value!r} is not a number") from None
    if not number.is_finite():
        raise BrokerError(f"{what}={value!r} is not a finite number")
    return number


def fill_from_activity(activity: Mapping[str, Any], account: str, sequence: int) -> Fill:
    """One Alpaca FILL activity as a `Fill` (Alpaca charges no fee on the fill itself)."""
    what = f"Alpaca FILL activity {activity.get('id')!r}"
    try:
        side = Side(str(activity["side"]).lower().replace("sell_short", "sell"))
        timestamp = dt.datetime.fromisoformat(str(activity["transaction_time"]))
        return Fill(
            timestamp=timestamp,
            symbol=str(activity["symbol"]),
            side=side,
            qty=_decimal(activity["qty"], f"{what} qty"),
            price=_decimal(activity["price"], f"{what} price"),
            exec_id=str(activity["id"]),
            order_id=activity.get("order_id") or None,
            account=account,
            sequence=sequence,
        )
    except (KeyError, ValueError) as error:
        raise BrokerError(f"{what} is malformed: {error}") from None


def _epoch(value: int | float) -> pd.Timestamp:
    """Alpaca history timestamps are epoch seconds; documentation examples use milliseconds."""
    unit = "ms" if value > 100_000_000_000 else "s"
    return pd.Timestamp(int(value), unit=unit, tz="UTC")


def account_values_from_history(history: Mapping[str, Any]) -> list[AccountValues]:
    """Session-close values from a portfolio-history body: the last point of each session.

    `profit_loss` of that point is the session's P&L (daily timeframe: against the previous
    day; intraday: against `base_value`, the previous close). `profit_loss_pct` is not used (it
    may be null). Points with a null equity are skipped.
    """
    stamps = history.get("timestamp") or []
    equities = history.get("equity") or []
    pnls = history.get("profit_loss") or [None] * len(stamps)
    if not (len(stamps) == len(equities) == len(pnls)):
        raise BrokerError(
            f"Alpaca portfolio history has {len(stamps)} timestamps, {len(equities)} equity "
            f"values and {len(pnls)} profit_loss values"
        )
    last: dict[dt.date, tuple[pd.Timestamp, Decimal, Decimal | None]] = {}
    for stamp, equity, pnl in zip(stamps, equities, pnls, strict=True):
        if equity is None:
            continue
        instant = _epoch(stamp)
        session = calendar.session_of(instant)
        day_pnl = None if pnl is None else _decimal(pnl, "Alpaca history profit_loss")
        if session not in last or last[session][0] <= instant:
            last[session] = (instant, _decimal(equity, "Alpaca history equity"), day_pnl)
    return [
        AccountValues(session_date=session, equity=equity, day_pnl=day_pnl, source="alpaca_history")
        for session, (_, equity, day_pnl) in sorted(last.items())
    ]


class AlpacaBroker:
    """An Alpaca trading account through alpaca-py (keys from the environment only)."""

    kind = "alpaca"

    def __init__(
        self,
        connection: AlpacaConnection,
        *,
        timeout_seconds: float = 10.0,
        live_snapshot: Callable[[], AccountSnapshot] | None = None,
        limiter: RateLimiter | None = None,  # default: this process's broker limiter
    ):
        from friren_pipelines.account.rate_limit import broker_rate_limiter

        if not (connection.key_id and connection.secret_key):
            raise BrokerError(
                "FRIREN_BROKER=alpaca needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY"
            )
        # The shared limiter paces calls; failures surface at once.
        self._client = connection.trading_client(
            limiter or broker_rate_limiter(), timeout_seconds=timeout_seconds
        )
        self._account: str | None = None
        self._live_snapshot = live_snapshot
        self._keys = (connection.key_id, connection.secret_key)

    def __repr__(self) -> str:
        return f"AlpacaBroker(base_url={self._client._base_url!s})"

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        import requests
        from alpaca.common.exceptions import APIError

        what = f"Alpaca GET {path}"
        try:
            return self._client.get(path, dict(params or {}))
        except APIError as error:
            # The body is the broker's words: it may echo the key it was sent.
            answer = redact(f"{error!s:.200}", *self._keys)
            raise BrokerError(f"{what} answered HTTP {error.status_code}: {answer}") from None
        except requests.Timeout:
            raise BrokerError(f"{what} timed out") from None
        except requests.RequestException as error:
            raise BrokerError(f"{what} failed: {type(error).__name__}") from None
        except ValueError:
            raise BrokerError(f"{what} answered a body that is not JSON") from None

    def _account_body(self) -> Mapping[str, Any]:
        body = self._get("/account")
        if not isinstance(body, Mapping):
            raise BrokerError("Alpaca GET /account answered a body that is not an account")
        return body

    @property
    def account(self) -> str:
        """The account number (e.g. 010203ABCD), asked once."""
        if self._account is None:
            number = self._account_body().get("account_number")
            if not number:
                raise BrokerError("Alpaca GET /account answered no account_number")
            self._account = str(number)
        return self._account

    def fill_activities(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """Every FILL activity from the start of `first` to the end of `last` (New York), all
        pages, each activity id once, in the broker's order."""
        start, end = _day_window(first, last)
        params: dict[str, Any] = {
            "after": start.isoformat(),
            "until": end.isoformat(),
            "direction": "asc",
            "page_size": PAGE_SIZE,
        }
        seen: dict[str, dict[str, Any]] = {}
        while True:
            page = self._get("/account/activities/FILL", params)
            if not isinstance(page, list):
                raise BrokerError("Alpaca GET /account/activities/FILL answered a non-list body")
            new = [item for item in page if str(item.get("id")) not in seen]
            for item in new:
                seen[str(item["id"])] = item
            if not new:
                break
            params["page_token"] = str(page[-1]["id"])
        return [item for item in seen.values() if item.get("activity_type", "FILL") == "FILL"]

    def fills(self, first: dt.date, last: dt.date) -> list[Fill]:
        activities = sorted(
            self.fill_activities(first, last),
            key=lambda item: (str(item.get("transaction_time")), str(item.get("id"))),
        )
        account = self.account
        fills = [fill_from_activity(item, account, index) for index, item in enumerate(activities)]
        return [fill for fill in fills if _in_dates(fill, first, last)]

    def positions(self, as_of: dt.date) -> dict[str, Position]:
        body = self._get("/positions")
        if not isinstance(body, list):
            raise BrokerError("Alpaca GET /positions answered a non-list body")
        found: dict[str, Position] = {}
        for item in body:
            symbol = str(item.get("symbol"))
            qty = abs(_decimal(item.get("qty"), f"Alpaca position {symbol} qty"))
            if str(item.get("side", "long")).lower() == "short":
                qty = -qty
            if qty == 0:
                continue
            price = _decimal(item.get("avg_entry_price"), f"Alpaca position {symbol} price")
            found[symbol] = Position(symbol, qty, price)
        return dict(sorted(found.items()))

    def account_values(self, first: dt.date, last: dt.date) -> list[AccountValues]:
        history = self._get(
            "/account/portfolio/history",
            {"start": first.isoformat(), "end": last.isoformat(), "timeframe": "1D"},
        )
        if not isinstance(history, Mapping):
            raise BrokerError("Alpaca GET /account/portfolio/history answered a non-object")
        values = {
            item.session_date: item
            for item in account_values_from_history(history)
            if first <= item.session_date <= last
        }
        today = calendar.session_of(pd.Timestamp.now(tz="UTC"))
        if first <= today <= last and calendar.is_session(today):
            values[today] = self.live_values(today)
        return [values[day] for day in sorted(values)]

    def live_values(self, today: dt.date) -> AccountValues:
        if self._live_snapshot is not None:
            # The cached live account: one broker call per TTL however many readers ask.
            return AccountValues.from_snapshot(self._live_snapshot(), today)
        body = self._account_body()

        def field(name: str) -> Decimal | None:
            raw = body.get(name)
            return None if raw is None else _decimal(raw, f"Alpaca account {name}")

        equity, last_equity = field("equity"), field("last_equity")
        if equity is None:
            raise BrokerError("Alpaca GET /account answered no equity")
        return AccountValues(
            session_date=today,
            equity=equity,
            day_pnl=None if last_equity is None else equity - last_equity,
            source="alpaca_account",
            **{name: field(name) for name in LIVE_BALANCES},
        )
