from typer.testing import CliRunner

from harness._cli import app


def test_both_commands_are_offered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output
    assert "load" in result.output


def test_a_bad_load_setting_exits_2_with_the_key_and_value() -> None:
    result = CliRunner().invoke(app, ["load", "--stage", "7"])
    assert result.exit_code == 2
    assert "stage=7.0" in result.output


def test_an_unknown_case_exits_2_naming_it() -> None:
    result = CliRunner().invoke(app, ["bench", "--case", "stall", "--case", "nope"])
    assert result.exit_code == 2
    assert "case='nope'" in result.output
