import pytest

from llmfiles import GLM, KIMI, ConfigError, UnsupportedPurposeError, provider_by_name


@pytest.mark.parametrize(("name", "spec"), [("kimi", KIMI), ("GLM", GLM)])
def test_provider_by_name_is_case_insensitive(name: str, spec: object) -> None:
    assert provider_by_name(name) is spec


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="provider='openai' is unknown; use one of: kimi, glm"):
        provider_by_name("openai")


def test_unknown_purpose_lists_accepted_ones() -> None:
    with pytest.raises(UnsupportedPurposeError, match="file-extract, image, video"):
        KIMI.limit_for("batch")


def test_glm_file_extract_is_smaller_than_kimi() -> None:
    assert GLM.limit_for("file-extract").max_bytes < KIMI.limit_for("file-extract").max_bytes
