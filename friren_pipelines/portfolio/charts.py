"""Pictures for the Dagster UI: the equity curve with its drawdown, realized P&L by symbol; each
with a legend and a title naming the account and the period (`equity_title`, `pnl_title`).

PNG bytes from matplotlib's Agg backend (no display needed); `market_data.metadata.picture`
turns them into asset metadata.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd


def _png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return buffer.getvalue()


def equity_title(account: str, equity: pd.Series) -> str:
    """`demo: equity and drawdown, 2025-01-02 to 2026-12-01 (XNYS session closes, USD)`."""
    if equity.empty:
        return f"{account}: equity and drawdown (no session yet)"
    first, last = min(equity.index), max(equity.index)
    return f"{account}: equity and drawdown, {first} to {last} (XNYS session closes, USD)"


def pnl_title(lots: Sequence[Mapping[str, Any]], method: str) -> str:
    """`demo: realized P&L by symbol, lots closed 2025-01-10 to 2026-11-30 (fifo, net of fees)`:
    the accounts, the close dates of the lots and the lot method."""
    accounts = ", ".join(sorted({str(lot["account"]) for lot in lots})) or "no account"
    stamps = [pd.Timestamp(lot["close_time"]) for lot in lots]
    closes = sorted((s.tz_convert("America/New_York") if s.tzinfo else s).date() for s in stamps)
    when = f"lots closed {closes[0]} to {closes[-1]}" if closes else "no closed lot"
    return f"{accounts}: realized P&L by symbol, {when} ({method}, net of fees)"


def equity_curve_png(equity: pd.Series, drawdown: pd.Series, title: str) -> bytes:
    """Equity (USD) above, drawdown from the running peak (%, ≤ 0) below; index: session."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    index = pd.to_datetime(pd.Index(equity.index))
    top.plot(
        index, [float(v) for v in equity], color="#1f77b4", linewidth=1.2, label="equity at close"
    )
    top.set_ylabel("equity, USD")
    top.set_title(title, fontsize=10)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.fill_between(
        index,
        [100 * float(v) for v in drawdown],
        0,
        color="#d62728",
        alpha=0.5,
        label="drawdown from running peak",
    )
    bottom.set_ylabel("drawdown, %")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="lower left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)


def pnl_by_symbol_png(pnl: Mapping[str, Decimal], title: str) -> bytes:
    """Horizontal bars of realized P&L (USD) per symbol, gains green, losses red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ordered = sorted(pnl.items(), key=lambda item: item[1])
    height = max(2.0, 0.35 * len(ordered) + 1)
    figure, axes = plt.subplots(figsize=(8, height))
    values = [float(value) for _, value in ordered]
    colors = ["#2ca02c" if value >= 0 else "#d62728" for value in values]
    axes.barh([symbol for symbol, _ in ordered], values, color=colors)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel("realized P&L net of fees, USD")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(
        handles=[Patch(color="#2ca02c", label="gain"), Patch(color="#d62728", label="loss")],
        loc="lower right",
        fontsize=8,
    )
    figure.tight_layout()
    return _png(figure)
