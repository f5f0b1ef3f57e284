"""A real HTTP/1.1 server that fakes Kimi's and GLM's Files APIs, with chaos injected on the wire.

Kimi is served under ``/kimi/v1`` and GLM under ``/glm/api/paas/v4``, so an official SDK's ``base_url``
points at it unchanged otherwise. Uploads stream to disk (SHA-256 computed as the bytes arrive);
``/content`` streams from disk and honours ``Range: bytes=N-`` for GLM ``batch`` files.

Chaos rules (see `Rule`) match requests by provider, operation and method, fire by probability or count,
and apply one effect: latency, an error status in the provider's own shape, a TCP reset, a partial body,
malformed JSON, a slow body, a hang, a lost response, or an error status after the upload was stored
(``stored_then_error``). Shipped profiles: ``calm``, ``realistic``,
``flaky``, ``brownout``, ``outage``, ``stalls``. The same seed and request order give the same faults.

Every provider request is journaled (``journal.jsonl`` in the data directory, served by ``/_journal``):
provider, operation, status, bytes in and out, SHA-256 of the upload, file id, fault, timings.

Control endpoints (never subject to chaos): ``GET/PUT /_chaos`` (``{"profile": name}`` of a shipped
profile, never a file, or ``{"rules": [...]}``, optionally ``"seed"``), ``POST /_reset``,
``GET /_journal?since=SEQ``, ``GET /_stats``, ``GET/PUT /_config``.

Limits: the providers' real per-purpose size and count limits apply by default. Benchmarks that move
files beyond 100 MB raise the size limit for a run: ``MockProvider(max_file_bytes=N)``, the CLI's
``--max-file-bytes N``, or ``PUT /_config {"max_file_bytes": N}`` (null restores the real limits). While
raised, Kimi's 10 GB account total is not enforced either. A request body that stalls short of its
``Content-Length`` for ``body_timeout`` seconds (default 30; ``--body-timeout``) is answered 408.

Usage::

    with MockProvider("realistic", seed=7) as mock:
        client = OpenAI(api_key="sk-test", base_url=mock.kimi_base_url)
        ...
        mock.journal()

or ``python -m mock_provider --port 0 --profile flaky --seed 7`` (prints the base URL first).
"""

from mock_provider._rules import (
    Error,
    Hang,
    Latency,
    LostResponse,
    Malformed,
    Match,
    Partial,
    Profile,
    ProfileError,
    Reset,
    Rule,
    Slow,
    StoredThenError,
    Trigger,
    load_profile,
    profile_names,
)
from mock_provider._runner import MockProvider, MockProviderError

__all__ = [
    "Error",
    "Hang",
    "Latency",
    "LostResponse",
    "Malformed",
    "Match",
    "MockProvider",
    "MockProviderError",
    "Partial",
    "Profile",
    "ProfileError",
    "Reset",
    "Rule",
    "Slow",
    "StoredThenError",
    "Trigger",
    "load_profile",
    "profile_names",
]
