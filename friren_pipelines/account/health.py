"""Can the desk trade on this account? A verdict with every reason it cannot."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from friren_pipelines.account.snapshot import AccountSnapshot


@dataclass(frozen=True)
class AccountHealth:
    """`reasons` make the account unhealthy; `warnings` do not (the account can trade) but say
    what is running in a degraded mode, such as the shared cache being unreachable."""

    healthy: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """All reasons joined with '; ', or 'ok' when healthy; warnings follow in parentheses."""
        text = "; ".join(self.reasons) if self.reasons else "ok"
        if self.warnings:
            text += f" (degraded: {'; '.join(self.warnings)})"
        return text

    def __bool__(self) -> bool:
        return self.healthy


def is_account_healthy(
    snapshot: AccountSnapshot, *, equity_floor: Decimal, max_age_seconds: float
) -> AccountHealth:
    """Unhealthy when the account or its trading is blocked, the account is not ACTIVE, it is
    flagged pattern day trader, its equity is under `equity_floor` (USD) or the snapshot is
    older than `max_age_seconds`. A degraded snapshot (Redis unreachable) is a warning only."""
    reasons = []
    if snapshot.account_blocked:
        reasons.append("account blocked")
    if snapshot.trading_blocked:
        reasons.append("trading blocked")
    if snapshot.status != "ACTIVE":
        reasons.append(f"account status is {snapshot.status}, not ACTIVE")
    if snapshot.pattern_day_trader:
        reasons.append("flagged pattern day trader")
    if snapshot.equity < equity_floor:
        reasons.append(f"equity {snapshot.equity} USD is under the floor of {equity_floor} USD")
    if snapshot.age_seconds > max_age_seconds:
        reasons.append(
            f"account data is {snapshot.age_seconds:.1f} s old (at most {max_age_seconds:g} s)"
        )
    warnings = (snapshot.degraded,) if snapshot.degraded else ()
    return AccountHealth(healthy=not reasons, reasons=tuple(reasons), warnings=warnings)
