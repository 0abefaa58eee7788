"""The built documentation site, opened in a real headless browser (Chromium).

Needs a built site (``python docs/build.py``, into ``site/`` or ``$DIFFREND_SITE``) and
Chromium with Playwright. Without them the tests skip, so README's test command passes on a
plain clone; CI builds the site and sets ``DIFFREND_REQUIRE_SITE=1``, which turns the skips
into failures. Every page must load with no console error, no failed request and every image
decoded; a screenshot of the lab index is saved to ``out/site/lab-index.png`` to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("DIFFREND_SITE", ROOT / "site"))
SHOTS = ROOT / "out" / "site"
REQUIRED = os.environ.get("DIFFREND_REQUIRE_SITE") == "1"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (DIFFREND_REQUIRE_SITE=1)")
    pytest.skip(reason)


def _pages() -> list[str]:
    if not (SITE / "index.html").is_file():
        return []
    return sorted(str(p.relative_to(SITE).parent).replace(".", "") + "/"
                  for p in SITE.rglob("index.html")
                  if not any(part in ("assets", "search") for part in p.parts))


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        _unavailable(f"no built site at {SITE}: run `python docs/build.py`")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[docs]')")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if chromium is None:
        _unavailable("no Chromium (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        # The flags keep Chromium off the network (this machine's is closed).
        b = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


# Images below the fold are fetched lazily; make them all load, then wait for each.
_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {count: imgs.length,
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                      .map(i => i.src.slice(0, 120))};
}"""


def test_site_has_the_pages_the_nav_promises():
    pages = _pages()
    if not pages:
        _unavailable(f"no built site at {SITE}")
    for must in ("/", "lab/", "getting-started/", "api/", "api/raster/",
                 "lab/01_what_is_a_differentiable_renderer/", "lab/06_point_clouds/"):
        assert must in pages, f"{must} missing from the built site"


@pytest.mark.parametrize("page", _pages() or ["/"])
def test_page_loads_cleanly(server, browser, page):
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    tab.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
           if r.status >= 400 else None)
    url = f"{server}/{page.lstrip('/')}"
    response = tab.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    images = tab.evaluate(_IMAGES_JS)
    tab.wait_for_load_state("networkidle")
    assert tab.title(), f"{url} has no title"
    assert tab.locator("article").inner_text().strip(), f"{url}: empty page"
    assert not images["broken"], f"{url}: images that did not load: {images['broken']}"
    if page == "lab/":
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SHOTS / "lab-index.png"), full_page=True)
    tab.close()
    assert not problems, f"{url}:\n" + "\n".join(problems)
    if page.startswith("lab/0"):
        # A lab page shows its pictures: the executed notebook's plots are embedded.
        assert images["count"] >= 2, f"{url}: {images['count']} images; was it executed?"
