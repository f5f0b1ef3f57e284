"""Run-time control endpoints: ``/_chaos``, ``/_reset``, ``/_journal``, ``/_stats``, ``/_config``.

They are never subject to chaos and never journaled, so a test can always see and steer the server.
``PUT /_chaos`` takes shipped profile names only: anyone who can reach the port can call it, so it must
not read files on the host (a TOML profile file is for the command line, where its owner names it).
"""

from __future__ import annotations

import json
from typing import Any

from mock_provider._api import Request, json_response
from mock_provider._providers import PROVIDERS
from mock_provider._rules import ProfileError, load_profile, parse_rules, profile_names
from mock_provider._state import MockState
from mock_provider._wire import RequestBody, Response

_MAX_CONTROL_BODY = 1024 * 1024


class ControlError(ValueError):
    """A control request that cannot be carried out; answered with 400 and the message."""


class Control:
    def __init__(self, state: MockState) -> None:
        self._state = state

    async def handle(self, request: Request, body: RequestBody) -> Response:
        routes = {
            ("GET", "/_chaos"): self._get_chaos,
            ("PUT", "/_chaos"): self._put_chaos,
            ("POST", "/_reset"): self._reset,
            ("GET", "/_journal"): self._journal,
            ("GET", "/_stats"): self._stats,
            ("GET", "/_config"): self._get_config,
            ("PUT", "/_config"): self._put_config,
        }
        handler = routes.get((request.method, request.path))
        if handler is None:
            known = ", ".join(f"{m} {p}" for m, p in routes)
            return _error(
                404, f"{request.method} {request.path} is not a control endpoint; use one of: {known}"
            )
        try:
            payload = await _read_json(body) if request.method == "PUT" else None
            return json_response(200, handler(request, payload))
        except ControlError as exc:
            return _error(400, str(exc))

    def _get_chaos(self, _request: Request, _payload: Any) -> dict[str, Any]:
        state = self._state
        return {
            "profile": state.profile,
            "seed": state.seed,
            "rules": [rule.model_dump(mode="json") for rule in state.rules],
        }

    def _put_chaos(self, request: Request, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or ("profile" in payload) == ("rules" in payload):
            raise ControlError('PUT /_chaos takes {"profile": "name"} or {"rules": [...]}, optionally "seed"')
        seed = payload.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ControlError(f"seed={seed!r} is not an integer")
        try:
            if "profile" in payload:
                name = payload["profile"]
                if not isinstance(name, str) or name not in profile_names():
                    raise ControlError(
                        f"profile={name!r} is not a shipped profile; use one of {profile_names()!r}, or send "
                        '{"rules": [...]} (profile files are read only from the command line)'
                    )
                self._state.set_rules(load_profile(name).rules, name, seed)
            else:
                self._state.set_rules(parse_rules(payload["rules"]), None, seed)
        except ProfileError as exc:
            raise ControlError(str(exc)) from exc
        return self._get_chaos(request, None)

    def _reset(self, _request: Request, _payload: Any) -> dict[str, Any]:
        self._state.reset()
        return {"reset": True}

    def _journal(self, request: Request, _payload: Any) -> list[dict[str, Any]]:
        since = request.query.get("since", "0")
        if not since.isdigit():
            raise ControlError(f"since={since!r} is not a non-negative integer")
        return self._state.journal.entries(int(since))

    def _stats(self, _request: Request, _payload: Any) -> dict[str, Any]:
        store = self._state.store
        return {
            **self._state.journal.stats(),
            "files": {name: store.count(name) for name in PROVIDERS},
            "stored_bytes": {name: store.total_bytes(name) for name in PROVIDERS},
            "connections_accepted": self._state.connections_accepted,
            "connections_open": self._state.connections_open,
        }

    def _get_config(self, _request: Request, _payload: Any) -> dict[str, Any]:
        return {"max_file_bytes": self._state.max_file_bytes}

    def _put_config(self, request: Request, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or set(payload) != {"max_file_bytes"}:
            raise ControlError('PUT /_config takes {"max_file_bytes": N or null}')
        value = payload["max_file_bytes"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ControlError(f"max_file_bytes={value!r} must be a positive integer or null")
        self._state.max_file_bytes = value
        return self._get_config(request, None)


async def _read_json(body: RequestBody) -> Any:
    raw = bytearray()
    async for chunk in body.chunks():
        raw += chunk
        if len(raw) > _MAX_CONTROL_BODY:
            raise ControlError(f"control body is over {_MAX_CONTROL_BODY} bytes; send a smaller document")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"control body is not JSON: {exc}") from exc
    except RecursionError:
        # json's C parser gives up on deep nesting (tens of thousands of brackets) with RecursionError.
        raise ControlError("control body nests too deeply to parse; send a flatter document") from None


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": {"message": message}})
