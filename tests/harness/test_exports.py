import harness


def test_public_names_are_pinned() -> None:
    assert sorted(harness.__all__) == sorted(
        [
            "CLAIMS",
            "TOPICS",
            "Claim",
            "Collected",
            "LostReport",
            "Measurement",
            "MemoryPoint",
            "Op",
            "Outcome",
            "PeerFigure",
            "Priority",
            "ReportFiles",
            "ScalePoint",
            "ThroughputPoint",
            "TimelinePoint",
            "Verdict",
            "claim_by_id",
            "exit_code",
            "find_lost",
            "judge",
            "judge_all",
            "write_report",
        ]
    )
    assert all(hasattr(harness, name) for name in harness.__all__)
