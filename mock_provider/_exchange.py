"""One connection's request/response loop, with chaos applied on the wire.

Order of events for a provider request: decide the chaos, then
hang | reset (after K body bytes or the whole request) | carry out the request (or drain it for an
injected error) -> latency -> lost response (RST) | error after storing | malformed | partial | normal
answer (maybe slow).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import h11

from mock_provider._api import FilesApi, Outcome, Request, Target, json_response, route
from mock_provider._chaos import Decision
from mock_provider._control import Control
from mock_provider._journal import Entry
from mock_provider._providers import CHAOS_ERROR_KINDS
from mock_provider._rules import Error, Hang, LostResponse, Malformed, Partial, Reset, StoredThenError
from mock_provider._state import MockState
from mock_provider._wire import BodyTimeoutError, Pacer, PeerGoneError, RequestBody, Response, Wire

_DEFAULT_RETRY_AFTER = 1
_log = logging.getLogger("mock_provider")


class Exchange:
    """Serves one accepted socket until the client leaves, a fault ends it, or the server stops."""

    def __init__(self, sock: socket.socket, state: MockState) -> None:
        self._wire = Wire(sock, state.body_timeout)
        self._state = state
        self._api = FilesApi(state)
        self._control = Control(state)

    async def run(self) -> None:
        try:
            while (head := await self._wire.next_request()) is not None:
                if not await self._serve(head) or not self._wire.next_cycle():
                    break
        except h11.RemoteProtocolError:
            await self._wire.respond_to_bad_request(400)
        except PeerGoneError:
            pass  # the client went away mid-exchange: nothing left to answer
        except BodyTimeoutError as exc:
            with contextlib.suppress(PeerGoneError):
                await self._wire.respond_to_bad_request(
                    408, json_response(408, {"error": {"message": str(exc)}}).body
                )
        except Exception:
            # A bug here must not kill the server silently nor leave the client waiting: say so and close.
            _log.exception("mock provider failed while serving a request")
            with contextlib.suppress(Exception):
                await self._wire.respond_to_bad_request(500)
        finally:
            self._wire.close()

    async def _serve(self, head: h11.Request) -> bool:
        """Answer one request; False when the connection must not be reused."""
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
        request = Request.from_target(head.method.decode("ascii"), head.target.decode("latin-1"), headers)
        if request.method == "HEAD":
            # A HEAD answer may carry no body, so no JSON error fits: a bare 405 says all there is.
            await RequestBody(self._wire).drain()
            await self._wire.respond(Response(405, (("Allow", "GET, POST, PUT, DELETE"),)))
            return True
        if request.path.startswith("/_"):
            body = RequestBody(self._wire)
            response = await self._control.handle(request, body)
            await body.drain()
            await self._wire.respond(response)
            return True
        target = route(request.method, request.path)
        if target is None:
            await RequestBody(self._wire).drain()
            message = f"{request.method} {request.path} is not a Files API route of this mock"
            await self._wire.respond(json_response(404, {"error": {"message": message}}))
            return True
        decision = self._state.chaos.decide(
            target.provider.name, target.operation, request.method, request.headers
        )
        journal = self._state.journal
        entry = journal.begin(target.provider.name, target.operation, request.method, request.path)
        entry.fault, entry.latency_s = decision.fault, decision.latency_s
        started = time.perf_counter()
        body = RequestBody(self._wire, _pacer(decision))
        try:
            return await self._answer(target, request, body, decision, entry)
        finally:
            entry.bytes_in = body.bytes_in
            entry.duration_s = time.perf_counter() - started
            journal.finish(entry)

    async def _answer(
        self, target: Target, request: Request, body: RequestBody, decision: Decision, entry: Entry
    ) -> bool:
        effect = decision.terminal
        if isinstance(effect, Hang):
            await self._wire.wait_until_peer_gone()
            return False
        if isinstance(effect, Reset):
            await body.drain(effect.after_request_bytes)
            self._wire.reset()
            return False
        if isinstance(effect, Error):
            await body.drain()
            outcome = Outcome(_injected_error(target, effect))
        else:
            outcome = await self._api.handle(target, request, body)
            await body.drain()
        entry.file_id, entry.sha256 = outcome.file_id, outcome.sha256
        if decision.latency_s > 0:
            await asyncio.sleep(decision.latency_s)
        if isinstance(effect, LostResponse):
            self._wire.reset()
            return False
        response = outcome.response
        if isinstance(effect, StoredThenError):
            response = _injected_error(target, Error(status=effect.status))
        if isinstance(effect, Malformed):
            response = _malformed(response)
        entry.status = response.status
        if isinstance(effect, Partial):
            entry.bytes_out = await self._wire.respond(
                response, cut_at=int(response.length * effect.fraction)
            )
            self._wire.close()
            return False
        entry.bytes_out = await self._wire.respond(response, pacer=_pacer(decision))
        return True


def _pacer(decision: Decision) -> Pacer | None:
    return Pacer(decision.bytes_per_second) if decision.bytes_per_second is not None else None


def _injected_error(target: Target, effect: Error) -> Response:
    provider = target.provider
    kind = CHAOS_ERROR_KINDS[effect.status]
    wait = effect.retry_after
    if wait is None and effect.status == 429:
        wait = _DEFAULT_RETRY_AFTER  # a 429 always says when to come back
    if effect.status == 429:
        message = f"rate limit reached, please try again after {wait} seconds"
    else:
        message = f"injected {effect.status} ({kind}) by the mock's chaos rules"
    headers = (("Retry-After", str(wait)),) if wait is not None else ()
    # The rule's status wins over the provider's usual one for that kind (GLM's 435 vs an injected 413).
    return json_response(effect.status, provider.error_body(kind, message), headers)


def _malformed(response: Response) -> Response:
    """A 200 whose JSON stops half-way (a body that ends inside a string never parses)."""
    text = response.body if response.file is None and response.body else b'{"id": "file-truncated"}'
    cut = text[: max(1, len(text) // 2)] + b'"'
    return Response(200, (("Content-Type", "application/json"),), cut)
