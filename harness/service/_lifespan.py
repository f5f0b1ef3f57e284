"""What lives while the app runs: the provider clients, the dispatcher, the ledger, the registry.

`Lifespan` opens them all at start-up and closes them in reverse order at shutdown; the handlers reach
them through Starlette's lifespan state (``request.state.live``, see `live`). The provider clients (the
two arms' and the service's own) are built in one place, `make_clients`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import cast

from starlette.applications import Starlette
from starlette.requests import Request

from harness._wiring import StaticFlags, make_dispatcher
from harness.service._checks import check_every
from harness.service._cleaner import Cleaner
from harness.service._config import ARM_HEADER, ServiceConfig
from harness.service._dedup import QuotaGuard, RegistryMetrics, clean_pass
from harness.service._ledger import Ledger
from harness.service._spool import SpoolSlots
from llmfiles.fleet import PostgresFlagSource, open_flag_source
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import EventLog, Recorder, RolloutMetrics
from llmfiles.providers import KIMI
from llmfiles.registry import UploadRegistry
from llmfiles.rollout import (
    Dispatcher,
    FlagSource,
    FlagState,
    OverridableFlagSource,
    RolloutController,
    StateStore,
)
from llmfiles.transfer import AsyncFilesClient, TransferSettings, UploadResult

__all__ = ["Clients", "Dedup", "Lifespan", "Live", "live", "make_clients"]


@dataclasses.dataclass(frozen=True, slots=True)
class Dedup:
    """The registry, its background clean-up and the quota guard uploads pass first."""

    registry: UploadRegistry
    cleaner: Cleaner
    guard: QuotaGuard
    metrics: RegistryMetrics


@dataclasses.dataclass(frozen=True, slots=True)
class Live:
    """The running service, as the handlers see it.

    Args:
        config: the settings.
        client: the service's own client (`Clients.service`): listings, downloads, deletes.
        dispatcher: picks the arm per caller and records each upload.
        ledger: the uploads answered as done; scopes what callers may see.
        dedup: the registry side, None with ``registry="none"``.
        spools: the directories request bodies are spooled in, one per request at a time.
        metrics: the Prometheus metrics ``/metrics`` serves.
        flags: the percentage in force (pinned to 0 by a rollback).
    """

    config: ServiceConfig
    client: AsyncFilesClient
    dispatcher: Dispatcher[UploadResult]
    ledger: Ledger
    dedup: Dedup | None
    spools: SpoolSlots
    metrics: RolloutMetrics
    flags: OverridableFlagSource


def live(request: Request) -> Live:
    """The running service, from the request's lifespan state."""
    return cast(Live, request.state.live)


@dataclasses.dataclass(frozen=True, slots=True)
class Clients:
    """The service's provider clients.

    Args:
        service: the service's own: listings, downloads, deletes and the quota clean-up. Not an arm's
            work, so its requests carry no arm label, and chaos aimed at one arm (`ARM_HEADER`) leaves
            them alone: a broken new arm must not slow the clean-up every upload depends on.
        async_arm: the new arm's uploads (and its reconcile), labelled ``async``.
        legacy: the old arm's uploads, labelled ``legacy``.
    """

    service: AsyncFilesClient
    async_arm: AsyncFilesClient
    legacy: LegacyFilesClient


def make_clients(config: ServiceConfig) -> Clients:
    """The service's provider clients: the one place any of them is built."""

    def client(settings: TransferSettings, headers: dict[str, str]) -> AsyncFilesClient:
        return AsyncFilesClient(
            KIMI,
            api_key=config.api_key,
            base_url=config.provider_url,
            settings=settings,
            default_headers=headers,
        )

    # Each arm's requests carry its name, so a provider (the mock's chaos rules) can tell them apart.
    legacy = LegacyFilesClient(
        KIMI, api_key=config.api_key, base_url=config.provider_url, default_headers={ARM_HEADER: "legacy"}
    )
    # Its own permits too: uploads stalled at a slow provider must not hold every one the deletes need.
    own = dataclasses.replace(config.transfer, limit_group="service")
    return Clients(
        service=client(own, {}), async_arm=client(config.transfer, {ARM_HEADER: "async"}), legacy=legacy
    )


class Lifespan:
    """Starlette's ``lifespan=``: opens everything in `Live` at start-up and closes it at shutdown.

    Args:
        config: the settings.
        registry: the unopened registry (built by `create_app`, so a bad URL fails before serving),
            or None for no deduplication.
    """

    def __init__(self, config: ServiceConfig, registry: UploadRegistry | None) -> None:
        self._config = config
        self._registry = registry

    @contextlib.asynccontextmanager
    async def __call__(self, _app: Starlette) -> AsyncIterator[dict[str, Live]]:
        config = self._config
        recorder = Recorder(window_s=3600)
        metrics = RolloutMetrics()
        stage = FlagState(enabled=True, percent=config.percent)
        # A flag file lets a load run move the stage while the service runs (its control/candidate phases);
        # a fleet's database lets its controller roll every instance back at once.
        source: FlagSource = (
            StaticFlags(stage) if config.flags is None else open_flag_source(config.flags, default=stage)
        )
        flags = OverridableFlagSource(source)
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(source, PostgresFlagSource):
                stack.callback(source.close)
            events = stack.enter_context(EventLog(config.events_path))
            ledger = stack.enter_context(Ledger(config.ledger_path))
            clients = make_clients(config)
            client = await stack.enter_async_context(clients.service)
            arm = await stack.enter_async_context(clients.async_arm)
            dedup = None
            if self._registry is not None:
                # Closed on the way out: an open aiosqlite connection keeps the interpreter alive.
                dedup = await self._open_dedup(stack, self._registry, client, metrics)
            controller = None
            if config.state_path is not None:
                controller = RolloutController(
                    recorder=recorder,
                    flags=flags,
                    store=StateStore(config.state_path),
                    interval_s=config.check_interval_s,
                    metrics=metrics,
                )
            dispatcher = make_dispatcher(
                flags,
                client=arm,
                legacy=clients.legacy,
                recorder=recorder,
                sinks=(events, metrics),
                stage=config.stage if controller is None else controller.current_stage,
                legacy_in_thread=config.legacy_in_thread,
                legacy_threads=config.legacy_threads,
            )
            stack.callback(dispatcher.close)
            if controller is not None:
                checks = asyncio.create_task(check_every(controller, config.check_interval_s))
                stack.push_async_callback(_cancel, checks)
            spools = SpoolSlots(config.workdir / "bodies", config.max_spools)
            yield {"live": Live(config, client, dispatcher, ledger, dedup, spools, metrics, flags)}

    async def _open_dedup(
        self,
        stack: contextlib.AsyncExitStack,
        registry: UploadRegistry,
        client: AsyncFilesClient,
        metrics: RolloutMetrics,
    ) -> Dedup:
        config = self._config
        opened = await stack.enter_async_context(registry)
        registry_metrics = RegistryMetrics(metrics.registry)
        clean = clean_pass(
            opened,
            provider=KIMI.name,
            delete=client.delete,
            max_files=config.keep_files,
            max_bytes=config.keep_bytes,
            metrics=registry_metrics,
            concurrency=config.cleanup_concurrency,
        )
        guard = QuotaGuard(
            opened,
            KIMI.name,
            delete=client.delete,
            max_files=config.max_files,
            max_bytes=config.max_bytes,
            metrics=registry_metrics,
            concurrency=config.cleanup_concurrency,
        )
        # Entered after the registry and the client, so it stops before they close.
        # A quarter second apart: under load a pass then covers dozens of releases at once.
        cleaner = await stack.enter_async_context(Cleaner(clean, min_interval_s=0.25))
        return Dedup(opened, cleaner, guard, registry_metrics)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
