"""Locust scenarios against the reference upload service (`harness.service`).

Run them through ``python -m harness load --scenario NAME`` (which starts the mock and the service
first), or by hand with ``locust -f loadtests/NAME.py --host http://SERVICE``. Never import locust in a
process that does anything else: it monkey-patches the standard library with gevent on import.
"""

#: Directory where each Locust process writes one JSON line per request (``samples-<pid>.jsonl``); the
#: harness sets it. Defined here, not in `loadtests._samples`, so the harness can name it without
#: importing locust.
SAMPLES_ENV = "LLMFILES_LOAD_SAMPLES"
