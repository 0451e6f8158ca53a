"""kpibot: engineering KPIs for teams, where they work."""

__version__ = "0.1.0"
