"""Foreach functions: each decides how many times an edge fires, and with what.

A foreach function is called by the dispatcher as ``function(results, node_args)`` where
``results.get('<ParentName>')`` is the stored result of the parent task the edge fired on. It
returns an iterable; the edge's destinations are started once per item. With
``propagate_result: true`` each item becomes the flow arguments of the sub-flow it starts.
"""

from __future__ import annotations

from typing import Any


def pages_to_analyze(results: Any, node_args: Any) -> list[dict[str, Any]]:
    """One ``analyze_page`` sub-flow per page of the sitemap, at most ``max_pages`` of them.

    Each item is the complete argument set of one ``analyze_page`` run::

        {"site": "https://shop.acme.test", "url": "https://shop.acme.test/about"}
    """
    sitemap = results.get("FetchSitemap") or {}
    args = node_args or {}
    limit = args.get("max_pages")
    pages = list(sitemap.get("pages", []))
    if isinstance(limit, int) and limit >= 0:
        pages = pages[:limit]
    site = sitemap.get("site", args.get("site"))
    return [{"site": site, "url": url} for url in pages]
