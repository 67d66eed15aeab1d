"""Building fills for hand-worked ledgers in tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from friren_pipelines.core.fills import Fill, Side


def utc(text: str) -> dt.datetime:
    """'2024-03-04 14:30' read as UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def fill(  # noqa: PLR0917 - positional like a row of the ledger tables
    exec_id: str,
    when: str,
    side: str,
    qty: str,
    price: str,
    fee: str = "0",
    *,
    symbol: str = "AAPL",
    strategy: str = "s1",
    order_id: str | None = None,
    sequence: int = 0,
) -> Fill:
    """A fill at `when` (UTC) with Decimal quantities given as text."""
    return Fill(
        timestamp=utc(when),
        symbol=symbol,
        side=Side(side),
        qty=Decimal(qty),
        price=Decimal(price),
        exec_id=exec_id,
        fee=Decimal(fee),
        order_id=order_id,
        strategy=strategy,
        sequence=sequence,
    )
