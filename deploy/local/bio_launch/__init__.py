"""The local launcher of the distributed mode (``deploy/local/launch.py``), in four parts:

- :mod:`.plan`: what to start (processes, ports, environment, secrets), from the platform's list of
  services (``bio_shared/services.toml``);
- :mod:`.preflight`: what must hold before anything starts (PostgreSQL, Redis, free ports, nothing
  already running, migrations);
- :mod:`.processes` and :mod:`.health`: process control (spawn in own process groups, pid files,
  stop, liveness, readiness, status);
- :mod:`.cli`: the command line; :mod:`.stack` ties them together in ``up``.
"""
