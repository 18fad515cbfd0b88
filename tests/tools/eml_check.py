#!/usr/bin/python3
"""Parse each .eml file named on the command line with Python's own MIME
parser (the stdlib `email` package, `email.policy.default`) and print one
JSON object: {"messages": {path: parsed}}.

Each parsed message is:

    {
      "headers": {name: [decoded value, ...]},   # names as written, in order
      "header_names": [name, ...],               # every header line, in order
      "addresses": {name: [{"display_name", "addr_spec"}, ...]},
      "content_type": "multipart/alternative",
      "is_multipart": true,
      "defects": ["...", ...],                   # parser complaints, if any
      "parts": [
        {"content_type": "text/plain", "charset": "utf-8",
         "transfer_encoding": "quoted-printable", "content": "...",
         "defects": [...]},
        {"content_type": "text/html", ...,
         "text": "...",                          # what a reader sees
         "links": [{"href": "...", "text": "..."}, ...]},
        ...
      ]
    }

`parts` lists the leaves of the MIME tree in order (for a single-part
message, the message itself). `content` is the decoded payload (transfer
encoding undone, charset applied). For HTML parts, `text` is the text of
the body as a reader sees it (entities decoded, `<head>`, `<style>` and
`<script>` left out; whitespace as in the source) and `links` every
`<a href>` with its decoded href and text, read with `html.parser`.

Run it with Debian's /usr/bin/python3; it needs nothing outside the
standard library.
"""

import html.parser
import json
import sys
from email import policy
from email.parser import BytesParser


def defects(obj):
    return [type(d).__name__ + ": " + str(d) for d in getattr(obj, "defects", [])]


def header_defects(msg):
    out = []
    for name, value in msg.items():
        for d in getattr(value, "defects", []):
            out.append("%s: %s: %s" % (name, type(d).__name__, d))
    return out


def addresses(value):
    found = []
    for address in getattr(value, "addresses", ()) or ():
        found.append(
            {"display_name": address.display_name, "addr_spec": address.addr_spec}
        )
    return found


class _Html(html.parser.HTMLParser):
    """Collects the visible text and the links of an HTML document."""

    HIDDEN = ("head", "style", "script", "title")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text = []
        self.links = []
        self.hidden = 0
        self.open_links = []

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        if tag == "a":
            href = dict(attrs).get("href")
            link = {"href": href, "text": ""}
            if href is not None:
                self.links.append(link)
            self.open_links.append(link)

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        if tag == "a" and self.open_links:
            self.open_links.pop()

    def handle_data(self, data):
        if self.hidden:
            return
        self.text.append(data)
        for link in self.open_links:
            link["text"] += data


def leaf(part):
    content = part.get_content()
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    out = {
        "content_type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "transfer_encoding": part.get("Content-Transfer-Encoding"),
        "content": content,
        "defects": defects(part),
    }
    if out["content_type"] == "text/html":
        parser = _Html()
        parser.feed(content)
        parser.close()
        out["text"] = "".join(parser.text)
        out["links"] = parser.links
    return out


def parse(path):
    with open(path, "rb") as f:
        msg = BytesParser(policy=policy.default).parse(f)
    headers = {}
    names = []
    address_headers = {}
    for name, value in msg.items():
        names.append(name)
        headers.setdefault(name, []).append(str(value))
        if name.lower() in ("from", "to", "cc", "bcc", "reply-to", "sender"):
            address_headers.setdefault(name, []).extend(addresses(value))
    parts = [leaf(p) for p in msg.walk() if not p.is_multipart()]
    return {
        "headers": headers,
        "header_names": names,
        "addresses": address_headers,
        "content_type": msg.get_content_type(),
        "is_multipart": msg.is_multipart(),
        "defects": defects(msg) + header_defects(msg),
        "parts": parts,
    }


def main(paths):
    out = {"messages": {path: parse(path) for path in paths}}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
