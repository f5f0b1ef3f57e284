"""fleet: users spread over several service instances (``LLMFILES_FLEET_HOSTS``, comma-separated).

Each user sticks to one instance, as a load balancer with session affinity would place it; small files,
so the run measures the rollout's reaction, not the disk.
"""

import os
import random
import uuid

from locust import HttpUser, between, task

from loadtests._payloads import authorize, pick_size, upload

HOSTS = [host for host in os.environ.get("LLMFILES_FLEET_HOSTS", "").split(",") if host]


class FleetUploader(HttpUser):
    wait_time = between(0.2, 0.6)

    def on_start(self) -> None:
        self.user_id = f"user-{uuid.uuid4().hex[:10]}"
        self.rng = random.Random(self.user_id)
        authorize(self.client)
        if HOSTS:
            self.client.base_url = self.rng.choice(HOSTS)

    @task
    def upload_one(self) -> None:
        upload(self.client, self.user_id, pick_size(self.rng, high=256 * 1024))
