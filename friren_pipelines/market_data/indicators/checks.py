"""The indicators' blocking checks: each a group of the core's validation rules, run over what a
materialization wrote (its partitions and the later ones it repaired), or over every stored
partition when launched on its own."""

from collections.abc import Iterator, Mapping

import dagster as dg

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.indicators import IndicatorIssue, IndicatorRule, validate_indicators
from friren_pipelines.market_data.indicators.storage import read_written, stored_partitions
from friren_pipelines.market_data.partitions import run_partitions
from friren_pipelines.resources import StorageResource

CHECK_RULES: Mapping[str, tuple[tuple[IndicatorRule, ...], str]] = {
    "indicators_rsi_in_range": (
        (IndicatorRule.RSI_OUT_OF_RANGE,),
        "rsi_14 and rsi_9 lie within [0, 100].",
    ),
    "indicators_bands_ordered": (
        (IndicatorRule.BANDS_OUT_OF_ORDER,),
        "bb_lower ≤ bb_middle ≤ bb_upper on every bar.",
    ),
    "indicators_one_row_per_bar": (
        (IndicatorRule.MISSING_ROW, IndicatorRule.ROW_WITHOUT_BAR, IndicatorRule.DUPLICATE_ROW),
        "Exactly one indicator row per stored bar, with the bar's timestamp.",
    ),
    "indicators_warmup": (
        (IndicatorRule.NULL_AFTER_WARMUP, IndicatorRule.VALUE_BEFORE_WARMUP),
        "NULL exactly during each indicator's warm-up (TA-Lib lookback from the symbol's first "
        "stored bar), never NULL after it.",
    ),
}


def build_indicators_checks(
    timeframe: Timeframe, asset: dg.AssetsDefinition
) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(name, asset=asset.key, blocking=True, description=description)
        for name, (_, description) in CHECK_RULES.items()
    ]

    @dg.multi_asset_check(specs=specs, name=f"{asset.key.to_python_identifier()}_checks")
    def indicators_checks(
        context: dg.AssetCheckExecutionContext, storage: StorageResource
    ) -> Iterator[dg.AssetCheckResult]:
        # Checks launched on their own (not with a materialization) run unpartitioned: all stored.
        partitions = run_partitions(context, timeframe) or stored_partitions(storage, timeframe)
        wide, bars, bars_before = read_written(storage, timeframe, partitions)
        issues = validate_indicators(wide, bars, bars_before)
        for name, (rules, _) in CHECK_RULES.items():
            found: list[IndicatorIssue] = [i for i in issues if i.rule in rules]
            yield dg.AssetCheckResult(
                check_name=name,
                asset_key=asset.key,
                passed=not found,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(str(i) for i in found[:5]) or "passed",
                metadata={"rows_checked": len(wide), "symbols": len(bars_before)},
            )

    return indicators_checks
