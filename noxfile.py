"""Every check and job of the project, one session per concern.

`nox -s bench` is the main job (it starts its own mock provider), `nox -s tests` the test suite.
Sessions prefer uv for speed and fall back to virtualenv when uv is not installed.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
TYPED_PACKAGES = ["src/llmfiles", "mock_provider", "harness", "loadtests"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, property and integration tests, then the memory limits under pytest-memray."""
    session.install("-e", ".[dev]")
    args = session.posargs or ["-m", "not memory"]
    session.run("pytest", *args)
    if not session.posargs:
        session.run("pytest", "-m", "memory", "--memray", "-p", "no:randomly")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting, on everything we ship and test."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library, the mock provider, the harness and the load scenarios."""
    session.install("-e", ".[dev]", "mypy>=1.13", "types-aiofiles", "types-psutil")
    session.run("mypy", "--strict", *TYPED_PACKAGES)


@nox.session(python=PYTHON)
def mock(session: nox.Session) -> None:
    """The mock provider in the foreground: `nox -s mock -- --profile realistic --port 8000`."""
    session.install("-e", ".")
    session.run("python", "-m", "mock_provider", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The main job: every claim measured, a report written, non-zero exit if a must-claim fails."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "harness", "bench", *session.posargs)


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """A Locust load run through the reference service: `nox -s load -- --stage 10 --users 150`."""
    session.install("-e", ".[load,bench]")
    session.run("python", "-m", "harness", "load", *session.posargs)


@nox.session(python=PYTHON)
def mutants(session: nox.Session) -> None:
    """Mutation testing of llmfiles.transfer and llmfiles.rollout with mutmut (slow; not in CI).

    mutmut 3 rather than cosmic-ray: it runs pytest in-process and forks per mutant, running only the
    tests that reached the mutated function (cosmic-ray starts a whole pytest per mutant: hours here),
    and its trampolines handle async functions, so pytest-asyncio tests kill mutants like any other.
    The src/ layout, the test selection and the extra directories the tests import are configured in
    `[tool.mutmut]` of pyproject.toml. `nox -s mutants -- --max-children 2` passes options to `mutmut run`;
    the per-module table (and, with `--survivors` after `mutmut run` finished, every survivor) follows.
    """
    session.install("-e", ".[dev]", "mutmut>=3.8,<4")
    session.run("mutmut", "run", *session.posargs)
    session.run("python", "scripts/mutants_report.py", "--survivors")


@nox.session(python=PYTHON)
def fleet(session: nox.Session) -> None:
    """The fleet run: three service instances, PostgreSQL, Prometheus, two controllers, distributed Locust."""
    session.install("-e", ".[load,bench,postgres]")
    session.run("python", "-m", "harness", "fleet", *session.posargs)
