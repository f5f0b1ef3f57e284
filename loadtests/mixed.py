"""mixed: uploads, listings and downloads of the user's own files, weighted like a busy day."""

import random
import uuid

from locust import HttpUser, between, task

import loadtests._samples  # noqa: F401  (records each request for the harness)
from loadtests._payloads import authorize, pick_size, upload


class MixedUser(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.user_id = f"user-{uuid.uuid4().hex[:10]}"
        self.rng = random.Random(self.user_id)
        authorize(self.client)
        self.files: list[str] = []

    @task(3)
    def upload_one(self) -> None:
        file_id = upload(self.client, self.user_id, pick_size(self.rng, high=2 * 1024 * 1024))
        if file_id is not None:
            self.files.append(file_id)

    @task(2)
    def list_files(self) -> None:
        self.client.get("/files", name="/files")

    @task(1)
    def download_one(self) -> None:
        if self.files:
            self.client.get(f"/files/{self.rng.choice(self.files)}/content", name="/files/[id]/content")
