"""The scale case's clients: the class that plays ours is the one the case was handed (its seam)."""

from harness.cases._peers import OURS, open_peer
from llmfiles.transfer import AsyncFilesClient

_NOWHERE = "http://127.0.0.1:9"  # nothing is sent: the clients are only built and closed


async def test_ours_is_built_from_the_class_handed_in_and_the_peers_ignore_it() -> None:
    built: list[AsyncFilesClient] = []

    class Marked(AsyncFilesClient):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            built.append(self)

    async with open_peer(OURS, _NOWHERE):
        pass
    assert built == []
    async with open_peer("httpx, file object", _NOWHERE, ours=Marked):
        pass
    assert built == []
    async with open_peer(OURS, _NOWHERE, ours=Marked):
        pass
    assert len(built) == 1
