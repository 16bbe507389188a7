"""The README's and docs/' links between pages land: on a file that exists and, with #anchor, on one
of its headings (GitHub's anchors: lower case, punctuation but hyphens dropped, spaces as hyphens)."""

import re

import pytest

LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def pages(root):
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def test_anchor_follows_githubs_rule():
    assert anchor("Ten minutes against SB3 PPO: Hopper, Walker2d, HalfCheetah") == \
        "ten-minutes-against-sb3-ppo-hopper-walker2d-halfcheetah"
    assert anchor("Letting N follow it: `episodes_max`") == "letting-n-follow-it-episodes_max"


@pytest.mark.parametrize("name", ["README.md", "docs"])
def test_every_link_between_pages_lands(request, name):
    root = request.config.rootpath
    broken = []
    for page in pages(root):
        if (name == "docs") != (page.parent.name == "docs"):
            continue
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            file, _, fragment = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif fragment and path.suffix == ".md" and fragment not in anchors(path):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
