"""A local fake WeCom server for development (``make run``) and tests.

- :mod:`bot.simulator.state`: the in-memory corp (tokens, contacts, transfers, chats, tags, codes,
  mass messages) and WeCom's rules, with a simulated clock that can be advanced.
- :mod:`bot.simulator.app`: the FastAPI sub-application serving ``/cgi-bin/...`` (and
  ``/sns/jscode2session``) plus ``/_admin/...`` controls, mounted at ``/_wecom_sim`` by
  :func:`bot.web.mount` only when no real WeCom credentials are configured.
- :mod:`bot.simulator.driver`: plays WeCom's side: signed and encrypted callbacks to ``/wecom/callback``.
- :mod:`bot.simulator.console`: the console page ``/_wecom_sim/console`` (企微模拟器).

State lives in the memory of ONE process: it is lost on restart and not shared between uvicorn
workers (run the simulator with one worker). ``POST /_wecom_sim/_admin/reset`` empties it.
"""
