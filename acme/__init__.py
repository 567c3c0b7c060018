"""acme: the imaginary team whose site-audit pipeline is selflow's reference system.

The YAML in ``config/`` names the code in this package: tasks (``acme.tasks``), one custom
predicate (``acme.predicates``) and a foreach function (``acme.foreach``). Everything here is
deterministic and offline: "crawling" is simulated from the flow arguments, so the reference
flows run in one process in well under a second per flow.
"""
