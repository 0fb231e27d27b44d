"""SuccessBeforePassing / FailuresBeforeWarning / FailuresBeforeCritical.

Mirrors Consul's ``StatusHandler``: counters start satisfied so the first result
applies at once; afterwards a status changes only after enough consecutive
results of its kind.
"""


class StatusFilter:
    def __init__(
        self,
        success_before_passing: int = 0,
        failures_before_warning: int = 0,
        failures_before_critical: int = 0,
    ):
        self.success_before_passing = success_before_passing
        self.failures_before_critical = failures_before_critical
        # Unset means "same as critical": no intermediate warning phase.
        self.failures_before_warning = (
            failures_before_warning or failures_before_critical
        )
        self._successes = success_before_passing
        self._failures = failures_before_critical

    def apply(self, status: str) -> str | None:
        """Status to record for this result, or None to keep the current one."""
        if status in ("passing", "warning"):
            self._successes += 1
            self._failures = 0
            if self._successes >= self.success_before_passing:
                return status
            return None
        self._failures += 1
        self._successes = 0
        if self._failures >= self.failures_before_critical:
            return status
        if self._failures >= self.failures_before_warning:
            return "warning"
        return None
