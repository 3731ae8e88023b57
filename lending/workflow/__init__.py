"""The configurable application workflow: definitions as data (definitions), the state machine (machine)
and the persistence of its moves with node visits, tasks, SLA reminders (engine)."""
