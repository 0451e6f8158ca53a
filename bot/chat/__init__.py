"""What every chat surface (Slack today, Microsoft Teams later) shares: nothing here knows
a chat platform's API."""
