"""`energymon bench`: the real pipeline (tansu, the Faust worker, InfluxDB) on a generated fleet, with
two peers doing the same accounting on the same broker, InfluxDB and data. BENCHMARKS.md says how
each figure is measured and holds the latest full run.

* :mod:`bench.fleet` — the generated fleet, its registry and its readings messages (pure);
* :mod:`bench.figures` — percentiles, latency matching, the figures table and ratios (pure);
* :mod:`bench.stack` — servers, the worker process, process meters (CPU, RSS);
* :mod:`bench.observe` — producers and observers (InfluxDB polls, the `alerts` topic);
* :mod:`bench.peers` — the naive kafka-python loop and the Quix Streams app;
* :mod:`bench.runner` — the whole run, as the command runs it.
"""
