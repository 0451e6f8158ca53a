"""Sources: API clients that turn provider payloads (GitHub, Jira, incident tools, webhooks)
into store records. The demo organisation (``bot.demo``) stands in for them until a sync runs.
"""
