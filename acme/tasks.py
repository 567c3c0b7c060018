"""The tasks of acme's site-audit pipeline (see ``config/`` and ``docs/reference-flows.md``).

Nothing here touches the network. A tiny simulated web (``SIMULATED_PATHS`` and ``fake_page``)
gives every site the same handful of pages, so results depend only on the flow arguments:

* ``/old-catalogue`` answers with a redirect (status 301), so conditions that want a 200 skip it;
* ``/broken`` cannot be fetched at all: ``FetchPage`` raises ``PageFetchError`` on it every
  time, which is what the ``analyze_page`` flow's fallback (``RecordDeadLink``) is for;
* sites on an ``intranet.`` host are disallowed by their robots rules.

Every result is a JSON-serialisable dict.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from selflow import SelflowTask

#: The pages every simulated site has, in sitemap order.
SIMULATED_PATHS = (
    "/",
    "/about",
    "/products/widget",
    "/products/gadget",
    "/blog/launch",
    "/old-catalogue",
    "/broken",
)

#: path -> (title, paragraphs) of the pages that answer 200.
_PAGES = {
    "/": ("Acme Shop", [
        "Welcome to the Acme shop.",
        "Fast delivery and friendly support.",
    ]),
    "/about": ("About Acme", [
        "Acme started in a small garage and now ships tools to workshops in twelve countries.",
        "Our team designs, tests and repairs everything we sell, and we publish the repair manuals",
        "for free because we think things should last.",
    ]),
    "/products/widget": ("Widget 3000", [
        "The Widget 3000 tightens anything.",
        "Price: $19.99",
    ]),
    "/products/gadget": ("Gadget Pro", [
        "The Gadget Pro measures twice so you cut once.",
        "Price: $42.50, or $39.00 with a workshop card.",
    ]),
    "/blog/launch": ("A new gadget line", [
        "This spring we launch a gadget line for beginners.",
    ]),
}

#: topic -> words that suggest it; used by ClassifyTopics.
_TOPIC_WORDS = {
    "products": {"widget", "gadget", "tools", "price"},
    "company": {"acme", "team", "garage", "countries"},
    "repair": {"repair", "repairs", "manuals", "last"},
    "news": {"launch", "spring", "new"},
}

_PRICE = re.compile(r"\$(\d+\.\d\d)")


class PageFetchError(Exception):
    """A simulated network failure."""


def _site(node_args: dict[str, Any]) -> str:
    return str(node_args["site"]).rstrip("/")


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def fake_page(url: str) -> dict[str, Any]:
    """What the simulated web answers for ``url`` (raises ``PageFetchError`` for ``/broken``)."""
    path = _path(url)
    if path.endswith("/broken"):
        raise PageFetchError(f"{url}: connection reset by peer")
    if path == "/old-catalogue":
        base = url[: -len(path)]
        return {"url": url, "status": 301, "content_type": "text/html", "location": base + "/products/widget"}
    if path not in _PAGES:
        return {"url": url, "status": 404, "content_type": "text/html"}
    title, paragraphs = _PAGES[path]
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    return {"url": url, "status": 200, "content_type": "text/html", "html": html}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.chunks: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif data.strip():
            self.chunks.append(data.strip())


def _words(text: str) -> list[str]:
    return [word.strip(".,:;!?()").lower() for word in text.split()]


class CheckRobots(SelflowTask):
    """Reads the site's robots rules. ``allowed`` is False for ``intranet.`` hosts."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        site = _site(node_args)
        host = urlsplit(site).hostname or ""
        return {
            "site": site,
            "allowed": not host.startswith("intranet."),
            "disallow": ["/admin", "/cart"],
        }


class FetchSitemap(SelflowTask):
    """Lists the site's pages (the simulated sitemap is the same for every site)."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        site = _site(node_args)
        return {"site": site, "pages": [site + path for path in SIMULATED_PATHS]}


class FetchPage(SelflowTask):
    """Downloads one page; fails on ``/broken`` every time it is tried."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        return fake_page(node_args["url"])


class ExtractText(SelflowTask):
    """Turns a page's HTML into plain text with a word count."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        page = self.parent_task_result("FetchPage")
        collector = _TextCollector()
        collector.feed(page.get("html", ""))
        # The <h1> repeats the title; keep only the body text after it.
        text = " ".join(collector.chunks[1:])
        return {
            "url": page["url"],
            "title": collector.title,
            "text": text,
            "word_count": len(text.split()),
            "language": "en",
        }


class ClassifyTopics(SelflowTask):
    """Tags a page with the topics its words suggest."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        text = self.parent_task_result("ExtractText")["text"]
        words = set(_words(text))
        topics = sorted(topic for topic, hints in _TOPIC_WORDS.items() if words & hints)
        return {"url": node_args["url"], "topics": topics}


class ExtractPrices(SelflowTask):
    """Finds the prices quoted on a product page."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        text = self.parent_task_result("ExtractText")["text"]
        return {"url": node_args["url"], "currency": "USD", "prices": [float(p) for p in _PRICE.findall(text)]}


class RecordDeadLink(SelflowTask):
    """Fallback of FetchPage: notes the page as dead so the audit still completes."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        error = self.parent_task_exception("FetchPage")
        return {"url": node_args["url"], "dead": True, "reason": error["message"]}


class ComposeReport(SelflowTask):
    """Writes the audit summary once the crawl is over."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        site = _site(node_args)
        crawl = self.parent.get("crawl_site", {})  # its finished nodes, thanks to propagate_finished
        analyzed = crawl.get("analyze_page", {})
        return {
            "site": site,
            "title": f"Site audit of {site}",
            "pages_fetched": len(analyzed.get("FetchPage", [])),
            "dead_links": len(analyzed.get("RecordDeadLink", [])),
            "pages_classified": len(analyzed.get("ClassifyTopics", [])),
        }


class NotifyTeam(SelflowTask):
    """Tells the team channel that the audit is ready (simulated: nothing is sent)."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        channel = node_args.get("notify", "#web-audit")
        return {"channel": channel, "text": f"Audit of {_site(node_args)} is ready."}
