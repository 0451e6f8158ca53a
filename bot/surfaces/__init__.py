"""Surfaces: the command line now; Slack listeners and scheduler jobs build on the same reports."""
