"""stage_promotion: steady uploads at a stage's percentage; the harness then asks the gates for a verdict.

Files stay small (10 KB..1 MB) so the run collects the stage's minimum number of async uploads; the
stage and the chaos profile are set on the service and the mock by `python -m harness load`.
"""

import random
import uuid

from locust import HttpUser, between, task

from loadtests._payloads import authorize, pick_size, upload


class StageUser(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.user_id = f"user-{uuid.uuid4().hex[:10]}"
        self.rng = random.Random(self.user_id)
        authorize(self.client)

    @task
    def upload_one(self) -> None:
        upload(self.client, self.user_id, pick_size(self.rng, high=1024 * 1024))
