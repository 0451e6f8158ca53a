"""Scheduled work of ``kpibot run``: digests, action-item reminders and the periodic sync.

``schedule`` computes when a subscription's digest is due in its team's time zone, ``lease``
keeps one scheduler active across processes, ``posting`` posts to Slack exactly once (with
429/5xx handling and per-channel pacing), and ``jobs`` ties them together under APScheduler.
"""
