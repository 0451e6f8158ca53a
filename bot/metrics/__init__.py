"""The metrics layer: pure KPI functions and the queries that feed them. No Slack, no HTTP."""
