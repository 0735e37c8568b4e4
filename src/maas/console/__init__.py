"""The web console: server-rendered pages at `/` on the HTTP port, a door like `maas.server` and the CLI.

Pages read through the same core services the control API uses (registry, traffic, jobs, keys, the metrics
history); every change a page offers is a call from the browser to the control or inference API, so it passes
the same edge layers (auth, guards, limits) and the same checks as the CLI's. Browser sign-in is a session
cookie bound to an API key (`sessions.py`, `gate.py`); the scripts and styles are served from the package.
"""
