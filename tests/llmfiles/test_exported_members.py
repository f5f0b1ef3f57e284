"""The top-level public surface is hand-kept: this pins it, so a name is added or removed on purpose."""

import inspect
import subprocess
import sys

import llmfiles
from llmfiles import _errors

EXPECTED = {
    "GLM",
    "KIMI",
    "AsyncFilesClient",
    "FileObject",
    "Obtained",
    "Progress",
    "ProviderSpec",
    "PurposeLimit",
    "TransferSettings",
    "UploadResult",
    "parse_content_disposition",
    "provider_by_name",
    "safe_join",
    "sanitize_filename",
    *_errors.__all__,
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(llmfiles.__all__) == EXPECTED
    assert len(llmfiles.__all__) == len(set(llmfiles.__all__))


def test_every_exported_class_and_function_is_defined_in_the_package() -> None:
    for name in llmfiles.__all__:
        member = getattr(llmfiles, name)
        if isinstance(member, type) or inspect.isfunction(member):
            assert member.__module__.startswith("llmfiles."), (name, member.__module__)


def test_every_error_derives_from_the_root() -> None:
    for name in _errors.__all__:
        assert issubclass(getattr(_errors, name), llmfiles.LLMFilesError), name


def test_a_plain_transfer_import_pulls_in_no_rollout_or_metrics() -> None:
    code = (
        "import sys, llmfiles; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'openfeature', 'aiosqlite', 'asyncpg') or m.startswith('llmfiles.rollout')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
