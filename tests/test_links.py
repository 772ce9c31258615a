"""Every link and image a reader follows resolves the way GitHub renders it: a relative target from
the folder of the file that holds it, an ``#anchor`` to a heading (or an id) of its target."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# [text](target "title") and ![alt](target); <img src="..."> and <a href="...">
MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
HTML_ID = re.compile(r"<a\b[^>]*\b(?:id|name)=\"([^\"]+)\"", re.I)


def documents() -> dict[Path, str]:
    """What GitHub renders as Markdown: README.md, docs/, the lab's README, the notebook's text cells."""
    docs = {p: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
                                        ROOT / "benchmarks" / "README.md"] if p.is_file()}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        docs[nb] = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return docs


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text as rendered, lower case, punctuation but '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set(HTML_ID.findall(text))
    for h in HEADING.findall(FENCE.sub("", text)):
        s = slug(h)
        out.add(f"{s}-{seen[s]}" if s in seen else s)  # a repeated heading gets -1, -2, ...
        seen[s] = seen.get(s, 0) + 1
    return out


def targets(text: str) -> list[str]:
    """The link targets a renderer sees: none inside code."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    return [t for t in MD_LINK.findall(text) + HTML_LINK.findall(text)
            if not re.match(r"[a-z][a-z+.-]*:", t, re.I)]  # http:, https:, mailto: are not ours to check


def broken(path: Path, text: str) -> list[str]:
    out = []
    for t in targets(text):
        rel, _, anchor = t.partition("#")
        target = (path.parent / rel).resolve() if rel else path
        if not target.exists():
            out.append(f"{path.relative_to(ROOT)}: {t} (no {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target})")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target.read_text()):
            out.append(f"{path.relative_to(ROOT)}: {t} (no heading #{anchor} in {target.name})")
        elif anchor and target == path and path.suffix == ".ipynb" and anchor not in anchors(text):
            out.append(f"{path.relative_to(ROOT)}: {t} (no heading #{anchor})")
    return out


def test_every_link_and_image_resolves_from_its_own_files_folder():
    found = [line for path, text in documents().items() for line in broken(path, text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text,bad", [
    ("![a](assets/x.png)", True),  # from docs/, assets/ is docs/assets/
    ("![a](../assets/triangle.png)", False),
    ('<img src="../assets/nothing.png">', True),
    ("[r](RESULTS.md#why-91-and-not-94)", False),
    ("[r](RESULTS.md#no-such-heading)", True),
    ("[here](#determinism)", False),
    ("[here](#nowhere)", True),
    ("`![a](assets/x.png)` in code", False),
    ("[web](https://example.org/missing)", False)])
def test_the_check_reads_links_as_a_renderer_does(text, bad):
    doc = ROOT / "docs" / "DESIGN.md"
    assert bool(broken(doc, text + "\n\n## Determinism\n")) is bad


def test_anchors_follow_githubs_slugs():
    text = "# Why 91% and not 94%\n## `helpers/` and the CLI\n## Notes\n## Notes\n```\n# not a heading\n```\n"
    assert anchors(text) == {"why-91-and-not-94", "helpers-and-the-cli", "notes", "notes-1"}
