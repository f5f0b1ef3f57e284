"""Events, the JSONL log and the CSV export."""

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmfiles import ConfigError
from llmfiles.observe import (
    ARMS,
    EVENT_FIELDS,
    OUTCOMES,
    ErrorKind,
    Event,
    EventLog,
    export_csv,
    hash_key,
    read_events,
)
from tests.llmfiles._events import make_event


def test_key_hash_hides_the_key_and_is_stable() -> None:
    digest = hash_key("alice@example.com", salt="flag")
    assert "alice" not in digest
    assert digest == hash_key("alice@example.com", salt="flag")
    assert digest != hash_key("alice@example.com", salt="other-flag")
    assert len(digest) == 16


def test_log_round_trips_events(tmp_path: Path) -> None:
    events = [make_event(), make_event(arm="legacy", outcome="failure", error_type="ConnectError", bytes=0)]
    with EventLog(tmp_path / "logs" / "events.jsonl") as log:
        for event in events:
            log.record(event)
    assert list(read_events(tmp_path / "logs" / "events.jsonl")) == events


def test_log_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    for _ in range(2):
        with EventLog(path) as log:
            log.record(make_event())
    assert len(list(read_events(path))) == 2


def test_fsync_mode_writes_the_same_lines(tmp_path: Path) -> None:
    with EventLog(tmp_path / "a.jsonl", fsync=True) as log:
        log.record(make_event())
    assert json.loads((tmp_path / "a.jsonl").read_text())["outcome"] == "success"


def test_closed_log_refuses_more_events(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.close()
    with pytest.raises(ConfigError, match="closed"):
        log.record(make_event())


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.record(make_event())
    with path.open("a") as handle:
        handle.write('{"ts": 1, "fl')
    assert len(list(read_events(path))) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1 is not JSON"),
        ("[1, 2]\n", "line 1 is not a JSON object"),
        ('{"ts": 1}\n', "missing fields"),
        (json.dumps({**make_event().to_dict(), "arm": "beta"}) + "\n", "arm='beta'"),
        (json.dumps({**make_event().to_dict(), "outcome": "maybe"}) + "\n", "outcome='maybe'"),
        (json.dumps({**make_event().to_dict(), "bytes": "many"}) + "\n", "wrong type"),
        (json.dumps({**make_event().to_dict(), "error_kind": "slow"}) + "\n", "error_kind='slow'"),
    ],
    ids=["not-json", "not-object", "missing-fields", "bad-arm", "bad-outcome", "bad-type", "bad-kind"],
)
def test_bad_lines_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        list(read_events(path))


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("duration_s", "Infinity"),
        ("duration_s", "NaN"),
        ("duration_s", "1e999"),
        ("duration_s", "-1"),
        ("ts", "NaN"),
        ("ts", "-Infinity"),
    ],
)
def test_non_finite_times_are_refused_with_the_line(tmp_path: Path, field: str, raw: str) -> None:
    # One duration_s=inf used to stretch the replayed window to infinity and drop every event.
    good = json.dumps(make_event().to_dict())
    bad = json.dumps({**make_event().to_dict(), field: "__RAW__"}).replace('"__RAW__"', raw)
    path = tmp_path / "events.jsonl"
    path.write_text(f"{good}\n{good}\n{bad}\n")
    with pytest.raises(ConfigError, match=rf"line 3: {field}=.* must be a finite"):
        list(read_events(path))


def test_missing_log_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(read_events(tmp_path / "nope.jsonl"))


def test_csv_columns_are_fixed_and_complete(tmp_path: Path) -> None:
    events = [make_event(), make_event(outcome="fallback", error_type="ReadTimeout")]
    dest = tmp_path / "out" / "events.csv"
    assert export_csv(events, dest) == 2
    with dest.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert tuple(header) == EVENT_FIELDS
    assert rows[1][header.index("error_type")] == "ReadTimeout"
    assert rows[0][header.index("error_type")] == ""
    assert [p.name for p in dest.parent.iterdir()] == ["events.csv"]


def test_csv_column_order_is_pinned() -> None:
    # Spreadsheets and scripts read columns by position: this order may only grow at the end.
    assert EVENT_FIELDS == (
        "ts",
        "flag",
        "arm",
        "outcome",
        "duration_s",
        "bytes",
        "error_type",
        "provider",
        "stage",
        "key_hash",
        "error_kind",
    )


@given(
    st.builds(
        Event,
        ts=st.floats(min_value=0, max_value=4e9),
        flag=st.text(max_size=20),
        arm=st.sampled_from(ARMS),
        outcome=st.sampled_from(OUTCOMES),
        duration_s=st.floats(min_value=0, max_value=1e4),
        bytes=st.integers(min_value=0, max_value=2**40),
        error_type=st.none() | st.text(min_size=1, max_size=30),
        provider=st.sampled_from(["kimi", "glm"]),
        stage=st.sampled_from(["off", "1%", "100%"]),
        key_hash=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
        error_kind=st.none() | st.sampled_from(ErrorKind),
    )
)
def test_events_round_trip_through_json(event: Event) -> None:
    assert Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event
