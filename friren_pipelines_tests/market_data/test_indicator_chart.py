"""The partition picture: a small PNG of candles, SMA, Bollinger and RSI, fast and headless."""

from __future__ import annotations

import io
import time
from pathlib import Path

import matplotlib
import matplotlib.image
import pandas as pd
import pytest

from friren_pipelines.core.bars import Timeframe, conform
from friren_pipelines.core.indicators import compute_indicators, to_wide
from friren_pipelines.market_data.indicator_chart import (
    DPI,
    FIGSIZE,
    chart_title,
    render_indicator_chart,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_bars(path: Path, symbol: str, timeframe: Timeframe) -> pd.DataFrame:
    raw = pd.read_csv(path).rename(columns=str.lower)
    if timeframe.is_intraday:
        raw["timestamp"] = pd.to_datetime(raw["datetime"], utc=True)
    else:
        raw["timestamp"] = pd.to_datetime(raw["date"]).dt.tz_localize("America/New_York")
    return conform(raw, symbol=symbol, timeframe=timeframe, adjustment="split", source="csv")


@pytest.fixture(scope="module")
def aapl_daily(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = load_bars(
        shared_data / "daily" / "AAPL_1d_2004-08-19_2018-01-19_yahoo.csv", "AAPL", Timeframe.DAY1
    )
    return bars, to_wide("AAPL", bars["timestamp"], compute_indicators(bars["close"].to_numpy()))


def pixels(png: bytes) -> tuple[int, ...]:
    assert png.startswith(PNG_SIGNATURE)
    return tuple(matplotlib.image.imread(io.BytesIO(png)).shape)


def test_chart_is_a_small_png_rendered_headless(
    aapl_daily: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, indicators = aapl_daily
    png = render_indicator_chart(bars, indicators, "AAPL 1d 2017")
    assert matplotlib.get_backend().lower() == "agg"
    assert pixels(png) == (int(FIGSIZE[1] * DPI), int(FIGSIZE[0] * DPI), 4)
    assert len(png) < 200_000


def test_a_long_history_is_drawn_as_its_last_bars_only(
    aapl_daily: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, indicators = aapl_daily
    assert len(bars) > 3000
    whole = render_indicator_chart(bars, indicators, "AAPL", max_bars=250)
    tail = render_indicator_chart(bars.tail(250), indicators.tail(250), "AAPL", max_bars=250)
    assert whole == tail
    assert whole != render_indicator_chart(bars.tail(251), indicators.tail(251), "AAPL")


def test_a_partition_inside_the_warm_up_renders_without_its_missing_lines(
    aapl_daily: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, indicators = aapl_daily
    # 12 bars: no SMA 20/50, no Bollinger, no RSI 14 yet: only candles, volume and RSI levels.
    png = render_indicator_chart(
        bars.head(12), indicators.head(12), "AAPL first days", show_volume=True
    )
    assert pixels(png)[:2] == (int(FIGSIZE[1] * DPI), int(FIGSIZE[0] * DPI))
    volume = render_indicator_chart(bars.head(40), indicators.head(40), "AAPL", show_volume=True)
    assert volume != render_indicator_chart(bars.head(40), indicators.head(40), "AAPL")


def test_a_day_of_minute_bars_renders_in_under_half_a_second(shared_data: Path) -> None:
    bars = load_bars(
        shared_data / "intraday" / "AAPL_1min_2021-08-23_2021-08-25_yfinance.csv",
        "AAPL",
        Timeframe.MIN1,
    )
    indicators = to_wide("AAPL", bars["timestamp"], compute_indicators(bars["close"].to_numpy()))
    bars, indicators = bars.tail(300), indicators.tail(300)
    render_indicator_chart(bars, indicators, "AAPL 1min")  # first call loads fonts
    durations = []
    for _ in range(3):
        started = time.perf_counter()
        png = render_indicator_chart(bars, indicators, "AAPL 1min 2021-08-25")
        durations.append(time.perf_counter() - started)
    assert png.startswith(PNG_SIGNATURE)
    assert min(durations) < 0.5


def test_refuses_several_symbols_missing_columns_and_no_bars(
    aapl_daily: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    bars, indicators = aapl_daily
    mixed = pd.concat([bars.tail(5), bars.tail(5).assign(symbol="MSFT")])
    with pytest.raises(ValueError, match=r"bars hold several symbols \(AAPL, MSFT\)"):
        render_indicator_chart(mixed, indicators, "mixed")
    with pytest.raises(ValueError, match="missing columns rsi_14"):
        render_indicator_chart(bars, indicators.drop(columns=["rsi_14"]), "no rsi")
    with pytest.raises(ValueError, match="no bars to draw"):
        render_indicator_chart(bars.head(0), indicators, "empty")


def test_every_line_has_a_legend_entry_and_the_title_says_what_where_and_when(
    aapl_daily: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure

    drawn: list[matplotlib.figure.Figure] = []
    save = matplotlib.figure.Figure.savefig

    def keep(figure: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        drawn.append(figure)
        save(figure, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    bars, indicators = aapl_daily
    title = chart_title("AAPL", Timeframe.DAY1, "2017")
    assert title == "AAPL 1d 2017 (XNYS): candles, SMA 20/50, Bollinger 20/2; RSI 14"
    assert chart_title("AAPL", Timeframe.MIN1, "2021-08-23").startswith(
        "AAPL 1min week of 2021-08-23, New York time (XNYS): "
    )
    render_indicator_chart(bars.tail(300), indicators.tail(300), title)
    (figure,) = drawn
    found = [axes.get_legend() for axes in figure.axes]
    legends = [[text.get_text() for text in legend.get_texts()] for legend in found if legend]
    assert legends == [
        ["SMA 20", "SMA 50", "Bollinger 20/2"],
        ["RSI 14", "oversold 30 / overbought 70"],
    ]
    assert title in [text.get_text() for text in figure.texts]
