"""The picture of an indicator partition for the Dagster UI: candles of one symbol with SMA 20/50
and the Bollinger bands, optionally volume, and RSI(14) in a panel below with its 30/70 lines;
each line has a legend entry, and `chart_title` says what, of which symbol and when.

Rendered headless with mplfinance on matplotlib's Agg backend as a small PNG (800×560 px); only
the last `MAX_BARS` bars are drawn, so a partition of any size renders in a fraction of a second.
Times on the x axis are New York time. Warm-up bars (NULL indicators) are simply not drawn.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe

MAX_BARS = 300
DPI = 80
FIGSIZE = (10.0, 7.0)  # inches; × DPI = pixels
_BAR_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_PRICE_LINES = {  # indicator → line colour on the candles, legend entry (the bands share one)
    "sma_20": ("tab:blue", "SMA 20"),
    "sma_50": ("tab:orange", "SMA 50"),
    "bb_upper": ("tab:gray", "Bollinger 20/2"),
    "bb_lower": ("tab:gray", None),
}
_RSI = "rsi_14"
_RSI_LEVELS = (30.0, 70.0)  # oversold / overbought, points
WHAT = "candles, SMA 20/50, Bollinger 20/2; RSI 14"


def chart_title(symbol: str, timeframe: Timeframe, period: str) -> str:
    """What the chart shows, of what and when: `AAPL 1d 2024 (XNYS): candles, SMA 20/50,
    Bollinger 20/2; RSI 14`; an intraday period is the week of its Monday, in New York time."""
    when = period if timeframe == Timeframe.DAY1 else f"week of {period}, New York time"
    return f"{symbol} {timeframe.value} {when} (XNYS): {WHAT}"


def _one_symbol(frame: pd.DataFrame, what: str, title: str) -> None:
    if "symbol" in frame and frame["symbol"].nunique() > 1:
        symbols = ", ".join(sorted(map(str, frame["symbol"].unique())))
        raise ValueError(f"chart {title!r}: {what} hold several symbols ({symbols}); expected one")


def render_indicator_chart(
    bars: pd.DataFrame,
    indicators: pd.DataFrame,
    title: str,
    *,
    max_bars: int = MAX_BARS,
    show_volume: bool = False,
) -> bytes:
    """PNG of one symbol's last `max_bars` bars with their indicators.

    `bars` is a bars frame (``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume``,
    ``timeframe``; UTC bar starts) and `indicators` the matching wide indicator frame
    (``timestamp`` and at least ``sma_20``, ``sma_50``, ``bb_upper``, ``bb_lower``, ``rsi_14``).
    Indicator rows are matched to bars by timestamp; a bar without one is drawn without values.
    `show_volume` adds a volume panel; it is off by default because its 300 bar patches double
    the render time (≈0.12 s → ≈0.27 s for 300 bars).
    """
    # Imported here: matplotlib and mplfinance take about a second to import, which every process
    # loading the Definitions would otherwise pay, even one that never draws a chart.
    import matplotlib

    matplotlib.use("Agg")  # headless: Dagster runs have no display; must precede pyplot's import
    import matplotlib.pyplot as plt
    import mplfinance as mpf

    missing = [c for c in (*_BAR_COLUMNS, "timeframe") if c not in bars]
    missing += [c for c in ("timestamp", *_PRICE_LINES, _RSI) if c not in indicators]
    if missing:
        raise ValueError(f"chart {title!r}: missing columns {', '.join(missing)}")
    if bars.empty:
        raise ValueError(f"chart {title!r}: no bars to draw")
    if max_bars < 1:
        raise ValueError(f"chart {title!r}: max_bars must be at least 1, got {max_bars}")
    _one_symbol(bars, "bars", title)
    _one_symbol(indicators, "indicators", title)

    shown = bars.sort_values("timestamp", kind="stable").tail(max_bars)
    stamps = pd.DatetimeIndex(shown["timestamp"])
    index = stamps.tz_convert(calendar.NEW_YORK).tz_localize(None)
    candles = pd.DataFrame(
        {
            "Open": shown["open"].to_numpy(np.float64),
            "High": shown["high"].to_numpy(np.float64),
            "Low": shown["low"].to_numpy(np.float64),
            "Close": shown["close"].to_numpy(np.float64),
            "Volume": shown["volume"].to_numpy(np.float64),
        },
        index=index,
    )
    values = indicators.drop_duplicates("timestamp").set_index("timestamp").reindex(stamps)

    def line(name: str) -> np.ndarray:
        return values[name].to_numpy(dtype=np.float64, na_value=np.nan)

    rsi_panel = 2 if show_volume else 1

    # A line with a label gets a legend entry in its panel (mplfinance draws the legend).
    def labelled(label: str | None) -> dict[str, str]:
        return {"label": label} if label else {}  # mplfinance refuses label=None

    plots = [
        mpf.make_addplot(line(name), panel=0, color=color, width=0.8, **labelled(label))
        for name, (color, label) in _PRICE_LINES.items()
        if not np.isnan(line(name)).all()  # mplfinance refuses an all-NaN line (warm-up only)
    ]
    rsi = line(_RSI)
    if not np.isnan(rsi).all():
        plots.append(
            mpf.make_addplot(
                rsi, panel=rsi_panel, color="tab:purple", width=0.8, ylabel="RSI 14", label="RSI 14"
            )
        )
    plots += [
        mpf.make_addplot(
            np.full(len(index), level),
            panel=rsi_panel,
            color="tab:red",
            linestyle="--",
            width=0.6,
            ylim=(0, 100),
            **labelled("oversold 30 / overbought 70" if level == _RSI_LEVELS[0] else None),
        )
        for level in _RSI_LEVELS
    ]
    intraday = Timeframe.parse(str(shown["timeframe"].iloc[0])).is_intraday
    figure, axes = mpf.plot(
        candles,
        type="candle",
        style="yahoo",
        addplot=plots,
        volume=show_volume,
        panel_ratios=(3, 1, 1.2) if show_volume else (3, 1.2),
        title={"title": title, "weight": "bold"},
        scale_padding={"left": 0.2, "right": 0.8, "top": 1.0, "bottom": 0.5},
        figsize=FIGSIZE,
        datetime_format="%m-%d %H:%M" if intraday else "%Y-%m-%d",
        xrotation=0,
        returnfig=True,
        warn_too_much_data=max_bars + 1,
    )
    try:
        for panel in axes:
            if panel.get_legend() is not None:  # in a corner, small, the lines seen through it
                panel.legend(loc="upper left", fontsize=8, framealpha=0.7)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return buffer.getvalue()
