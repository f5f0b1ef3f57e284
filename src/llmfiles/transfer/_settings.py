"""Transfer settings: one frozen value object, validated once when it is built."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from llmfiles._errors import ConfigError

KIB = 1024


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """How the async client talks to a provider.

    Args:
        connect_timeout: seconds to open a TCP connection.
        read_timeout: seconds to wait for the next bytes of a response (a hung server ends here).
        write_timeout: seconds to wait while the socket will not take more of the request body.
        pool_timeout: seconds to wait for a free pooled connection.
        retries: extra attempts after the first one, for 429, 5xx and transport errors.
        backoff_base: seconds of the first backoff step; it doubles per attempt (full jitter on top).
        backoff_max: cap of one exponential backoff step, in seconds.
        retry_after_max: cap on a provider's ``Retry-After`` so a hostile value cannot park us for hours.
        max_concurrency: requests in flight at once, shared by every client of the process that uses the
            same value on the same event loop; also the connection pool size. Transfers beyond twice
            this wait before doing any work, so a burst queues instead of freezing the loop. 16 keeps
            the loop's p99 stall under 10 ms with 150 uploads requested at once on two cores; 32 and 64
            cost ~20 % and ~90 % more event-loop CPU per GB (httpx's pool scans every connection per
            request) and stall longer, for no more throughput where the CPU is the limit.
        limit_group: clients share `max_concurrency`'s permits within a group (and the same value).
            The default puts every client of the process in one; a service gives its housekeeping
            client (deletes, clean-up) a group of its own, so uploads stalled at a slow provider
            cannot hold every permit its clean-up needs.
        chunk_size: bytes read from disk and hashed per worker-thread step of an upload. An upload
            holds a few chunks at its peak (the one being sent, the next one, the socket's unsent rest,
            and now and then one more while the loop and the workers interleave; the longer the file,
            the likelier that moment): 512 KiB reached 2.1-2.5 MB for 1 GiB on a busy machine, 256 KiB
            stays under 1 MB, for 7-18 % more upload CPU per GB.
        write_batch_size: bytes a download gathers from the socket before one worker-thread step
            writes (and, with a hash to check, hashes) them; a download holds about this much more
            than the socket's buffers and its reads. Per 50 MB download on loopback, hashed: one step
            per 64 KiB read ran at 190-210 MB/s, 256 KiB batches at 285-300, 1 MiB at 370-400 MB/s for
            1.9 CPU s/GB; unchecked (no hash) with 128 KiB reads (`_transport`), 768 KiB batches ran
            at 510-570 MB/s for 1.15 s/GB with the peak at 1.67 MB (1 MiB batches: 1.92 MB).
        reconcile_skew: seconds subtracted from the upload's start time when gathering candidates during
            reconciliation; provider clocks and whole-second timestamps drift a little. A wider window
            only makes more files candidates (checked by content, or refused when they cannot be).
        reconcile_grace: after an upload timed out waiting for its answer (read timeout, 504), how long
            to keep looking in the listing for the file before sending it again. The body may still be
            on its way to the provider (a read timeout starts once the body is in the kernel, not once
            the provider has it); a file that lands later than this is a second copy.
        reconcile_interval: seconds between two looks during `reconcile_grace`.
        clock: wall-clock time in seconds since the epoch (injectable so tests need not sleep).
        sleep: the backoff sleep (injectable so tests need not sleep).
        jitter: a random number in [0, 1) for backoff jitter (injectable for deterministic tests).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 30.0
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    max_concurrency: int = 16
    limit_group: str = "shared"
    chunk_size: int = 256 * KIB
    write_batch_size: int = 768 * KIB
    reconcile_skew: float = 5.0
    reconcile_grace: float = 10.0
    reconcile_interval: float = 1.0
    clock: Callable[[], float] = field(default=time.time, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name}={value!r} must be a positive number of seconds")
        if not self.reconcile_interval > 0:
            raise ConfigError(
                f"reconcile_interval={self.reconcile_interval!r} must be a positive number of seconds"
            )
        for name in ("backoff_base", "backoff_max", "retry_after_max", "reconcile_skew", "reconcile_grace"):
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigError(f"{name}={value!r} must be zero or a positive number of seconds")
        if self.retries < 0:
            raise ConfigError(f"retries={self.retries!r} must be zero or more")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency={self.max_concurrency!r} must be at least 1")
        for name in ("chunk_size", "write_batch_size"):
            value = getattr(self, name)
            if not 4 * KIB <= value <= 16 * KIB * KIB:
                raise ConfigError(f"{name}={value!r} must lie between 4 KiB and 16 MiB")

    @property
    def reconcile_looks(self) -> int:
        """How many more times the listing is read during `reconcile_grace`, `reconcile_interval` apart."""
        return math.ceil(self.reconcile_grace / self.reconcile_interval)

    def httpx_timeout(self) -> httpx.Timeout:
        """The per-phase timeouts in httpx's shape."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def httpx_limits(self) -> httpx.Limits:
        """Pool size matches the concurrency limit, so a permit always finds a connection."""
        return httpx.Limits(
            max_connections=self.max_concurrency,
            max_keepalive_connections=self.max_concurrency,
        )
