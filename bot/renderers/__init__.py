"""Renderers: turn report objects into terminal text, JSON, or Slack Block Kit."""
