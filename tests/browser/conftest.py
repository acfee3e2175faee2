"""Reports what the browser test saw (``make test-browser`` prints it at the end)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest


@dataclass
class BrowserLog:
    pages: list = field(default_factory=list)  # pages that passed every check
    external: set = field(
        default_factory=set
    )  # off-loopback URLs the pages asked for (refused)
    code_columns: list = field(
        default_factory=list
    )  # characters of code that fit a code block, per page
    started: float = field(default_factory=time.perf_counter)


_LOG = pytest.StashKey[BrowserLog]()


def pytest_configure(config):
    config.stash[_LOG] = BrowserLog()


@pytest.fixture(scope="session")
def browser_log(pytestconfig) -> BrowserLog:
    return pytestconfig.stash[_LOG]


def pytest_terminal_summary(terminalreporter, config):
    log = config.stash[_LOG]
    terminalreporter.write_line(
        f"browser test: {len(log.pages)} page(s) passed in headless Chromium "
        f"({time.perf_counter() - log.started:.1f} s); screenshots in _build/screenshots/"
    )
    if log.code_columns:
        terminalreporter.write_line(
            f"  the narrowest code column fits {min(log.code_columns)} characters per line "
            f"(widest page: {max(log.code_columns)}) at this viewport"
        )
    for url in sorted(log.external):
        terminalreporter.write_line(
            f"  refused off-loopback request (needs the internet to render): {url}"
        )
