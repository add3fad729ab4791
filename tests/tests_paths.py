"""Paths to the repository's sample dbt projects and the shared corpus."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_manifests"
SHOP = SAMPLES / "shop"
HOSTILE = SAMPLES / "hostile"
CORPUS = REPO.parent / "shared" / "corpus"
