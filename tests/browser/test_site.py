"""Open every page of the built book in headless Chromium and check what a reader sees.

Per page: no Python traceback or papermill error in the rendered outputs, no
stderr block longer than three lines (progress bars and routine logs belong in a
log file, not in the book), no code block wider than its column (a reader would
have to scroll it sideways), every image loaded, every same-site link answers
200, the left navigation lists every document in ``_toc.yml``, and a full-page
screenshot goes to ``_build/screenshots/``. A second test per page checks that
its math is typeset and that no ``$...$`` or ``\\(...\\)`` is left in the prose.
Run it with ``make test-browser`` after ``make book``.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# BOOK_HTML points the test at another build (e.g. a downloaded Pages artifact).
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = SITE.parent / "screenshots"  # _build/screenshots for the default build
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The build machines have no outside network: with these flags Chromium makes no
# background connections (updates, sync, QUIC probes) that would stall or fail.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads", ".doctrees"}
LOOPBACK = "http://127.0.0.1:"
# Rendered outputs: myst-nb wraps each cell's outputs in .cell_output and marks
# stderr and error outputs with .output.stderr / .output.traceback.
OUTPUTS = ".cell_output"
# Jupyter Book 1 (sphinx-thebe) writes its inline `const THEBE_JS_URL = ...` script
# into every page twice; the second copy throws. It is the theme's, harmless
# (Thebe is not enabled here), and any other uncaught JavaScript error still fails.
KNOWN_SCRIPT_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
# A stderr block (a cell's merged stderr output) may say one short thing; more is
# clutter: a progress bar, a training log, a stack of warnings.
MAX_STDERR_LINES = 3
# Math that MathJax has not typeset: TeX delimiters left in the text of a page.
RAW_MATH = re.compile(r"\$[^$\s][^$\n]*\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
# The last line of a Python traceback: "ValueError: ...", "pkg.module.SomeError: ...".
EXCEPTION_LINE = re.compile(
    r"^\s*(?:[A-Za-z_][\w.]*)?(?:Error|Exception): .*$", re.MULTILINE
)


def site_pages() -> list[str]:
    """Every HTML page of the built site, relative to its root (asset folders left out)."""
    if not SITE.is_dir():
        return []
    pages = (path.relative_to(SITE) for path in SITE.rglob("*.html"))
    return sorted(page.as_posix() for page in pages if not ASSET_DIRS & set(page.parts))


def toc_documents(toc_path: Path = ROOT / "_toc.yml") -> tuple[str, list[str]]:
    """The root document and every other document ``_toc.yml`` lists, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    documents: list[str] = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                documents.append(str(entry["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    walk([toc])
    return str(toc["root"]), documents


def redirect_target(page: str) -> str | None:
    """Where a meta-refresh stub (the site's index.html) sends the reader, if it is one."""
    match = re.search(
        r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"',
        (SITE / page).read_text(),
        re.I,
    )
    return match and match.group(1)


PAGES = site_pages()


@pytest.fixture(scope="session")
def site() -> Path:
    if not PAGES:
        pytest.fail(f"no built book in {SITE}: run `make book` first", pytrace=False)
    return SITE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output to the results
        pass


@pytest.fixture(scope="session")
def base_url(site):
    """The built site served on a free loopback port for the whole session."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{LOOPBACK}{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory, browser_log):
    """Debian's Chromium with a fresh user-data-dir. Requests off loopback are refused
    (and listed in the summary), so a page that needs the internet cannot hang the test."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    def loopback_only(route):
        url = route.request.url
        if url.startswith((LOOPBACK, "data:", "blob:", "about:")):
            route.continue_()
        else:
            browser_log.external.add(url)
            route.abort("blockedbyclient")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.route("**/*", loopback_only)
        yield context
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture(scope="session")
def link_status(base_url):
    """HTTP status of a same-site URL (fragment stripped), each URL fetched once."""

    @functools.cache
    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    return status


def test_every_toc_document_was_built(site):
    root, documents = toc_documents()
    missing = [doc for doc in [root, *documents] if f"{doc}.html" not in PAGES]
    assert not missing, f"_toc.yml lists documents with no page in {SITE}: {missing}"


@pytest.mark.parametrize("page_path", PAGES or ["(no _build/html)"])
def test_page(
    page_path, site, base_url, browser, screenshots, link_status, browser_log
):
    url = urljoin(base_url, page_path)
    page = browser.new_page()
    broken_requests: list[str] = []
    page.on(
        "requestfailed",
        lambda r: (
            r.url.startswith(LOOPBACK)
            and broken_requests.append(f"{r.url} ({r.failure})")
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and broken_requests.append(f"{r.url} (HTTP {r.status})")
        ),
    )
    script_errors: list[str] = []
    page.on(
        "pageerror",
        lambda err: str(err) in KNOWN_SCRIPT_ERRORS or script_errors.append(str(err)),
    )
    try:
        target = redirect_target(page_path)
        if target:
            # The index is a meta-refresh stub: the browser must land on a real page.
            with page.expect_navigation(url=urljoin(url, target), wait_until="load"):
                page.goto(url, wait_until="commit")
        else:
            response = page.goto(url, wait_until="load")
            assert response is not None and response.status == 200, (
                f"{url}: HTTP {response and response.status}"
            )
        page.wait_for_load_state("networkidle")
        page.screenshot(
            path=str(
                screenshots
                / (page_path.replace("/", "__").removesuffix(".html") + ".png")
            ),
            full_page=True,
        )
        problems = (
            output_errors(page)
            + long_stderr(page)
            + missing_outputs(page)
            + unloaded_images(page)
            + broken_links(page, link_status)
            + missing_navigation(page)
            # last: it unfolds the folded cell inputs, after the screenshot
            + overflowing_code(page, browser_log)
            + [f"request failed: {r}" for r in broken_requests]
            + [f"JavaScript error: {e}" for e in script_errors]
        )
    finally:
        page.close()
    assert not problems, f"{page_path}:\n  " + "\n  ".join(problems)
    browser_log.pages.append(page_path)


def output_errors(page) -> list[str]:
    """Tracebacks, error outputs and papermill's error markers in the rendered outputs (not prose)."""
    problems = []
    for text in page.locator(OUTPUTS).all_inner_texts():
        for marker in ("Traceback (most recent call last)", "PapermillExecutionError"):
            if marker in text:
                problems.append(f"output contains {marker!r}: {text.strip()[:300]!r}")
    tracebacks = page.locator(".output.traceback").count()
    if tracebacks:
        problems.append(f"{tracebacks} error output(s) (.output.traceback)")
    for text in page.locator(".output.stderr").all_inner_texts():
        match = EXCEPTION_LINE.search(text)
        if match:
            problems.append(
                f"stderr output reports an exception: {match.group(0).strip()[:300]!r}"
            )
    # papermill marks a failed run with an "An Exception was encountered" cell and an anchor.
    if (
        page.locator("#papermill-error-cell").count()
        or page.get_by_text("An Exception was encountered at").count()
    ):
        problems.append(
            "papermill's error marker is on the page (the chapter failed while executing)"
        )
    return problems


def long_stderr(page) -> list[str]:
    """stderr blocks longer than ``MAX_STDERR_LINES`` lines: progress bars, routine logs."""
    problems = []
    for text in page.locator(".output.stderr").all_inner_texts():
        lines = text.strip().splitlines()
        if len(lines) > MAX_STDERR_LINES:
            problems.append(
                f"stderr block of {len(lines)} lines (at most {MAX_STDERR_LINES}): "
                f"{lines[0][:120]!r} ..."
            )
    return problems


def overflowing_code(page, browser_log) -> list[str]:
    """Code blocks (cell inputs and code in the prose) wider than their column, which
    the reader would have to scroll sideways: the block's first line, its longest line
    and how many characters fit. Folded cell inputs (``hide-input``) are unfolded first,
    so they count too (their column is narrower: the fold is an admonition with
    padding). Outputs (printed tables) may scroll and are not checked. Records the
    characters of the code font that fit the narrowest code column, for the summary."""
    measured = page.evaluate(
        """() => {
            document.querySelectorAll("details").forEach(d => { d.open = true; });
            const blocks = Array.from(document.querySelectorAll("div.highlight pre"))
                .filter(pre => !pre.closest(".cell_output"));
            const fitsByWidth = new Map();
            const fits = pre => {  // longest line of x that shows without scrolling
                if (!fitsByWidth.has(pre.clientWidth)) {
                    const probe = pre.cloneNode(false);
                    pre.parentNode.appendChild(probe);
                    let n = 1;
                    for (; n < 400; n++) {
                        probe.textContent = "x".repeat(n + 1);
                        if (probe.scrollWidth > probe.clientWidth + 1) break;
                    }
                    probe.remove();
                    fitsByWidth.set(pre.clientWidth, n);
                }
                return fitsByWidth.get(pre.clientWidth);
            };
            const wide = blocks.filter(pre => pre.scrollWidth > pre.clientWidth + 1).map(pre => {
                const lines = pre.innerText.split("\\n");
                const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
                return {
                    kind: pre.closest(".cell_input") ? "code cell" : "code block",
                    folded: Boolean(pre.closest("details")),
                    first: lines[0].trim().slice(0, 40),
                    line: lines.indexOf(longest) + 1,
                    width: longest.length,
                    fits: fits(pre),
                    text: longest.trim().slice(0, 60),
                };
            });
            const narrowest = blocks.length ? Math.min(...blocks.map(fits)) : null;
            return {narrowest, wide};
        }"""
    )
    if measured["narrowest"]:
        browser_log.code_columns.append(measured["narrowest"])
    return [
        f"{w['kind']}{' (folded)' if w['folded'] else ''} starting {w['first']!r}: line {w['line']} "
        f"has {w['width']} characters, {w['fits']} fit: {w['text']!r}"
        for w in measured["wide"]
    ]


@pytest.mark.parametrize("page_path", PAGES or ["(no _build/html)"])
def test_math_is_typeset(page_path, site, base_url, browser, screenshots):
    """No TeX delimiters left in the prose, and every math span typeset by MathJax.

    The site serves MathJax itself (sphinx-mathjax-offline copies it into ``_static``)
    and this test's browser refuses every request off loopback, so math that needs the
    network shows as raw TeX here and fails, naming where MathJax was loaded from.
    The paragraph of each page's first math is saved as ``math__<page>.png`` beside the
    page screenshots.
    """
    page = browser.new_page()
    try:
        target = redirect_target(page_path)
        page.goto(urljoin(base_url, target if target else page_path), wait_until="load")
        page.wait_for_load_state("networkidle")
        state = page.evaluate(
            """async () => {
                if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                    await MathJax.startup.promise;
                }
                const script = document.querySelector("script[src*='mathjax' i]");
                const math = Array.from(document.querySelectorAll(".math"));
                // Prose only: leave out code, outputs, and the math spans themselves.
                const article = document.querySelector("article") || document.body;
                const clone = article.cloneNode(true);
                clone.querySelectorAll("pre, code, .cell_output, .math, script, style")
                    .forEach(el => el.remove());
                return {
                    script: script ? script.src : null,
                    typeset: Boolean(window.MathJax && MathJax.startup && MathJax.startup.document),
                    math: math.length,
                    raw: math.filter(el => !el.querySelector("mjx-container")).map(el => el.textContent.trim()),
                    prose: clone.innerText,
                };
            }"""
        )
        if state["math"]:  # the first equation as the reader sees it, offline
            # its paragraph (or the equation block itself) for context
            page.locator(".math").first.locator("xpath=..").screenshot(
                path=str(
                    screenshots
                    / (
                        "math__"
                        + page_path.replace("/", "__").removesuffix(".html")
                        + ".png"
                    )
                )
            )
    finally:
        page.close()
    delimiters = [m.group(0)[:80] for m in RAW_MATH.finditer(state["prose"])]
    assert not delimiters, (
        f"{page_path}: TeX delimiters left in the prose: {delimiters[:5]}"
    )
    assert not state["raw"], (
        f"{page_path}: {len(state['raw'])} math span(s) shown as raw TeX "
        f"(e.g. {state['raw'][:3]}); MathJax loaded from {state['script']!r}, "
        f"typeset: {state['typeset']}"
    )


def missing_outputs(page) -> list[str]:
    """A chapter page whose code cells all lack outputs was rendered from an unexecuted notebook."""
    code_cells = page.locator("div.cell").count()
    if code_cells and not page.locator(".cell_output").count():
        return [
            f"none of its {code_cells} code cells has an output: the chapter was not executed"
        ]
    return []


def unloaded_images(page) -> list[str]:
    """Images the browser could not decode (naturalWidth 0), lazy ones forced to load first."""
    broken = page.evaluate(
        """async () => {
            const images = Array.from(document.images);
            images.forEach(img => { img.loading = "eager"; });
            await Promise.all(images.map(img => img.decode().catch(() => null)));
            return images.filter(img => img.naturalWidth === 0).map(img => img.currentSrc || img.src);
        }"""
    )
    return [f"image not loaded: {src}" for src in broken]


def broken_links(page, link_status) -> list[str]:
    """Same-site links (fragment stripped) that do not answer HTTP 200."""
    origin = page.evaluate("location.origin")
    hrefs = page.evaluate(
        "Array.from(document.querySelectorAll('a[href]'), a => a.href)"
    )
    targets = sorted(
        {urldefrag(href).url for href in hrefs if href.startswith(origin + "/")}
    )
    return [
        f"link {t} answers HTTP {code}"
        for t in targets
        if (code := link_status(t)) != 200
    ]


def missing_navigation(page) -> list[str]:
    """Documents of ``_toc.yml`` absent from the left navigation (the root is the logo link)."""
    root, documents = toc_documents()
    nav = page.locator("nav.bd-docs-nav")
    if nav.count() != 1:
        return [f"expected one left navigation (nav.bd-docs-nav), found {nav.count()}"]
    base = page.evaluate("location.href")
    listed = {
        urldefrag(urljoin(base, href)).url
        for href in nav.evaluate(
            "nav => Array.from(nav.querySelectorAll('a[href]'), a => a.getAttribute('href'))"
        )
    }
    # The current page links to itself as "#", which resolves to the page's own URL.
    missing = [
        doc for doc in documents if urljoin(base, "/" + doc + ".html") not in listed
    ]
    brand = page.locator("a.navbar-brand")
    home = {
        urldefrag(urljoin(base, h)).url
        for h in brand.evaluate_all("els => els.map(a => a.getAttribute('href'))")
    }
    if urljoin(base, "/" + root + ".html") not in home:
        missing.append(f"{root} (the logo link)")
    return [f"left navigation does not list {doc}" for doc in missing]
