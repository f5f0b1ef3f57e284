"""stage_promotion: uploads at a steady, paced rate; the harness switches the stage and asks for a verdict.

Each Locust user sends at most `RATE_PER_USER` uploads a second (Locust's ``constant_throughput``), so
the offered load is a fixed rate the service can sustain, not "as fast as answers come back": latencies
then describe the arms, not a queue. Files stay small (10 KB..1 MB) so a short run collects enough
async uploads. The harness sets the rate (``LLMFILES_LOAD_RATE_PER_USER``), the stage and the chaos.

A Locust user is a connection sending requests, not one of the service's callers: each upload is sent
for a caller drawn from `POPULATION` simulated callers (``X-User``, the dispatcher's bucketing key). A
stage routes a share of callers, and with 150 callers the share at 10 % would itself be a draw of
15 +- 4 callers, so a run's new-arm calls would swing by a quarter either way; over 5000 callers it is
500 +- 21, as in production, where a stage's share is taken over many callers.
"""

import os
import random
import time
import uuid

from locust import HttpUser, constant_throughput, task

import loadtests._samples  # noqa: F401  (records each request for the harness)
from loadtests._payloads import authorize, pick_size, upload

RATE_PER_USER = float(os.environ.get("LLMFILES_LOAD_RATE_PER_USER", "0.1"))
POPULATION = 5000


class StageUser(HttpUser):
    wait_time = constant_throughput(RATE_PER_USER)

    def on_start(self) -> None:
        self.rng = random.Random(uuid.uuid4().hex)
        # Users spawn within seconds of each other; without a random offset into the first cycle they stay
        # in step and the "paced" load arrives as one burst of every user per cycle.
        time.sleep(self.rng.uniform(0, 1 / RATE_PER_USER))
        authorize(self.client)

    @task
    def upload_one(self) -> None:
        caller = f"caller-{self.rng.randrange(POPULATION)}"
        upload(self.client, caller, pick_size(self.rng, high=1024 * 1024))
