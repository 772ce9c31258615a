"""The lab: what measures the project and renders its documents. Run its tools as
``python -m benchmarks.NAME``; it imports ``helpers``, never the other way round."""
from __future__ import annotations

import argparse


def parser(doc: str, prog: str) -> argparse.ArgumentParser:
    """A lab command's parser, as the product's: its module docstring's whole first paragraph as the
    description, and a bad option answered in one line with exit status 2."""
    from helpers.cli import Parser  # the lab sits on the product, never the reverse

    first = " ".join(doc.strip().split("\n\n")[0].split())
    return Parser(prog=prog, description=first[:-1] + "." if first.endswith(":") else first)
