"""The live lobby (docs/lobby.md, "Event stream"): the event stream of each signed-in
browser (Server-Sent Events), what is published on it, the matcher as a background task of
the ASGI application, and the "Live now" page."""
