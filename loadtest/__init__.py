"""Bot players over the real path (lobby HTTP, then the node), and load reports.

Scenarios (each starts its own lobby and node on free loopback ports, then the bots):

    python -m loadtest.scenarios c1k            # 1,000 websocket bots, 16-player rooms, 60 s
    python -m loadtest.scenarios polling        # 200 xhr-polling + 200 xhr-streaming bots
    python -m loadtest.scenarios churn          # 500 bots joining and leaving, leak check
    python -m loadtest.scenarios slow-client    # 10% of the bots stop reading
    python -m loadtest.scenarios c1k --small    # a few bots for a few seconds (the tests)
    python -m loadtest.scenarios c1k --mode tag # any registered mode, of any game

The tool against a running lobby (see `python -m loadtest --help` for every flag):

    python -m loadtest --lobby http://127.0.0.1:8000 --bots 200 --ramp 10 --duration 60 \\
        --transport websocket --report reports/run.json \\
        --node-metrics http://127.0.0.1:8001/metrics

Modules: `cli` (the parent: workers, progress, node scraping, report), `worker` (one
asyncio loop per process, the input ticker), `bot` (one player: lobby, node connection,
inputs, measures), `sockjs_client` (SockJS 0.3 websocket / xhr-streaming / xhr-polling),
`stats` (mergeable histograms), `metrics` (Prometheus text, /proc), `report` (JSON, table,
PNG, HTML), `brain` (what a bot plays: the game's brain from the registry, or a generic
one), `scenarios`, `procs` (child servers started without a port race). Bots import
only `engine.codec` and `engine.registry` of the project, never a game. Figures and what
they mean: docs/performance.md. Tests: `pytest tests/loadtest`.
"""
