"""Telephony (外呼): collectors' calls through a provider interface, the built-in simulator, call records.

- :mod:`.calls`: ``place_call`` / ``place_batch`` (the browser asks to call a customer or a case; the
  server checks the do-not-call list and the permitted hours, stores the call, and a task dials it,
  decrypting the number on the server), the call list, the do-not-call list.
- :mod:`.callbacks`: the provider's signed result callbacks (result, duration, recording URL) stored in an
  inbox under their event id, then applied to the call once; every finished call lands on the customer's
  timeline and goes to the listeners of its subject (:func:`.listeners.on_call_finished`).
- :mod:`.provider`: the provider interface, and the HTTP adapter that speaks to the simulator or a real
  call center; :mod:`.config` decides which. :mod:`.web` is the callback endpoint, :mod:`.simulator` the
  simulator at ``/_tel_sim``.
"""
