"""The chat-neutral core every chat surface (Slack today, Microsoft Teams next) calls: the
``/kpi`` grammar (:mod:`.grammar`), command dispatch, team resolution, action items and
subscriptions (:mod:`.service`, answering with :mod:`.answers`), and who may change what
(:mod:`.permissions`). Nothing here knows a chat platform's API or message format; each
surface parses its payloads, calls :class:`~bot.chat.service.ChatService` with its
:class:`~bot.chat.voice.Voice`, and renders the answer."""
