#!/usr/bin/python3
"""Parse each feed file named on the command line with feedparser and print
one JSON object: {"feeds": {path: parsed}}.

Run it with Debian's /usr/bin/python3 (package python3-feedparser). Exits 3
with a clear message when feedparser cannot be imported, so the Rust test
fails loudly instead of skipping.
"""

import calendar
import html.parser
import json
import sys

try:
    import feedparser
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(
        "feeds_to_json.py: cannot import feedparser (%s); install Debian's "
        "python3-feedparser and run this with /usr/bin/python3\n" % e
    )
    sys.exit(3)


def text(value):
    return None if value is None else str(value)


def epoch(struct):
    """A feedparser time tuple (UTC) as Unix seconds, or None."""
    return None if struct is None else calendar.timegm(struct)


class _Text(html.parser.HTMLParser):
    """Collects the text a reader shows for some HTML (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def shown_text(detail, value):
    """What a reader displays: HTML rendered to text, plain text as is."""
    if value is None:
        return None
    if (detail or {}).get("type") in ("text/html", "application/xhtml+xml"):
        parser = _Text()
        parser.feed(value)
        parser.close()
        return "".join(parser.parts)
    return value


def content_values(entry):
    return [
        {"type": c.get("type"), "base": c.get("base"), "value": c.get("value")}
        for c in entry.get("content", [])
    ]


def entry_json(entry):
    return {
        "id": entry.get("id"),
        "title": entry.get("title"),
        "title_type": (entry.get("title_detail") or {}).get("type"),
        "title_text": shown_text(entry.get("title_detail"), entry.get("title")),
        "link": entry.get("link"),
        "links": [
            {"rel": l.get("rel"), "href": l.get("href"), "type": l.get("type")}
            for l in entry.get("links", [])
        ],
        "author": entry.get("author"),
        "published": entry.get("published"),
        "published_epoch": epoch(entry.get("published_parsed")),
        "updated": entry.get("updated"),
        "updated_epoch": epoch(entry.get("updated_parsed")),
        "summary": entry.get("summary"),
        "summary_type": (entry.get("summary_detail") or {}).get("type"),
        "summary_text": shown_text(entry.get("summary_detail"), entry.get("summary")),
        "content": content_values(entry),
        "tags": [t.get("term") for t in entry.get("tags", [])],
        "media_content": [dict(m) for m in entry.get("media_content", [])],
        "media_thumbnail": [dict(m) for m in entry.get("media_thumbnail", [])],
        "enclosures": [dict(e) for e in entry.get("enclosures", [])],
    }


def feed_json(path):
    parsed = feedparser.parse(path)
    feed = parsed.feed
    return {
        "bozo": bool(parsed.bozo),
        "bozo_exception": text(parsed.get("bozo_exception")),
        "version": parsed.get("version"),
        "encoding": parsed.get("encoding"),
        "namespaces": dict(parsed.get("namespaces", {})),
        "feed": {
            "title": feed.get("title"),
            "title_text": shown_text(feed.get("title_detail"), feed.get("title")),
            "subtitle": feed.get("subtitle"),
            "subtitle_text": shown_text(feed.get("subtitle_detail"), feed.get("subtitle")),
            "link": feed.get("link"),
            "updated": feed.get("updated"),
            "updated_epoch": epoch(feed.get("updated_parsed")),
            "id": feed.get("id"),
            "author": feed.get("author"),
        },
        "entries": [entry_json(e) for e in parsed.entries],
    }


def main(paths):
    if not paths:
        sys.stderr.write("usage: feeds_to_json.py FEED...\n")
        return 2
    out = {"feedparser": feedparser.__version__, "feeds": {p: feed_json(p) for p in paths}}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
