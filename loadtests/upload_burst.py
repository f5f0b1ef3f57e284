"""upload_burst: many users uploading files of 10 KB to 20 MB at once (run with >= 150 users)."""

import random
import uuid

from locust import HttpUser, between, task

import loadtests._samples  # noqa: F401  (records each request for the harness)
from loadtests._payloads import authorize, pick_size, upload


class Uploader(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.user_id = f"user-{uuid.uuid4().hex[:10]}"
        self.rng = random.Random(self.user_id)
        authorize(self.client)

    @task
    def upload_one(self) -> None:
        upload(self.client, self.user_id, pick_size(self.rng))
