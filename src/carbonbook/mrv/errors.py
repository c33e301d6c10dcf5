"""Why a report is refused: every problem, each naming its field and the rule."""

from __future__ import annotations

from typing import NamedTuple

from carbonbook.errors import DomainError


class Problem(NamedTuple):
    path: str  # e.g. fuel_combustion[1].oxidation_rate
    message: str
    message_zh: str


class InvalidReportError(DomainError):
    """A report with one or more problems; nothing is computed or stored."""

    code = "INVALID_REPORT"
    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        more_zh = f"（另有 {len(problems) - 1} 处问题）" if len(problems) > 1 else ""
        super().__init__(
            f"{first.path}: {first.message}{more}",
            f"{first.path}：{first.message_zh}{more_zh}",
            problems=[{"field": p.path, "problem": p.message} for p in problems],
        )


class UnknownMethodologyError(InvalidReportError):
    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(
            [Problem("methodology", message.removeprefix("methodology: "), message_zh)]
        )
