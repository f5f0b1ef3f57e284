"""stage_promotion: uploads at a steady, paced rate; the harness switches the stage and asks for a verdict.

Each user sends at most `RATE_PER_USER` uploads a second (Locust's ``constant_throughput``), so the
offered load is a fixed rate the service can sustain, not "as fast as answers come back": latencies
then describe the arms, not a queue. Files stay small (10 KB..1 MB) so a short run collects enough
async uploads. The harness sets the rate (``LLMFILES_LOAD_RATE_PER_USER``), the stage and the chaos.
"""

import os
import random
import time
import uuid

from locust import HttpUser, constant_throughput, task

import loadtests._samples  # noqa: F401  (records each request for the harness)
from loadtests._payloads import authorize, pick_size, upload

RATE_PER_USER = float(os.environ.get("LLMFILES_LOAD_RATE_PER_USER", "0.1"))


class StageUser(HttpUser):
    wait_time = constant_throughput(RATE_PER_USER)

    def on_start(self) -> None:
        self.user_id = f"user-{uuid.uuid4().hex[:10]}"
        self.rng = random.Random(self.user_id)
        # Users spawn within seconds of each other; without a random offset into the first cycle they stay
        # in step and the "paced" load arrives as one burst of every user per cycle.
        time.sleep(self.rng.uniform(0, 1 / RATE_PER_USER))
        authorize(self.client)

    @task
    def upload_one(self) -> None:
        upload(self.client, self.user_id, pick_size(self.rng, high=1024 * 1024))
