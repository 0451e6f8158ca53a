"""The Microsoft Teams surface: inbound activities on ``POST /api/messages`` (authenticated
with the Bot Framework's keys), answered through the core and posted back through the
connector as Adaptive Cards."""
