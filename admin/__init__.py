"""The managers' web console (server-rendered, Chinese) and the staff JSON API."""
