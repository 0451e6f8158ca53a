"""Action items as every chat surface shows and edits them: the rows, the form's fields
(by field name, not any platform's form ids) and their limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MAX_OPPORTUNITY = 500
MAX_RESOLUTION = 1000

#: the fields of the action-item form; validation errors are keyed by these names
FIELDS = ("team", "kpi", "opportunity", "resolution", "owner", "due_on")


@dataclass(frozen=True)
class ItemInput:
    """The fields of the action-item form, as submitted."""

    team: str | None
    kpi: str | None
    opportunity: str
    resolution: str
    owner: str | None
    due_on: str | None  # YYYY-MM-DD


@dataclass(frozen=True)
class ItemRow:
    id: int
    team: str
    opportunity: str
    resolution: str
    owner: str
    due_on: date
    completed_on: date | None
    kpi: str | None
    baseline: float | None
    created_by: str
    platform: str = "slack"  # the chat platform of owner and created_by

    def overdue(self, today: date) -> bool:
        return self.completed_on is None and self.due_on < today


@dataclass(frozen=True)
class TeamRow:
    name: str
    timezone: str
    repos: int
    channels: tuple[str, ...]  # the conversations mapped to it on the asking platform
    #: members now, for a team defined by its people (None: no ``members``/``github_team``)
    members: int | None = None
    github_team: str | None = None
    paths: tuple[str, ...] = ()
