"""The fixtures other tests stand on: the lean sample manifest is the real one for dagfactory."""

from __future__ import annotations

import orjson
from conftest import UNREAD_SECTIONS
from tests_paths import SHOP

from dagfactory import generate, load_config


def test_the_lean_sample_manifest_builds_the_same_files_as_the_real_one(shop_lean, tmp_path):
    lean = tmp_path / "manifest.json"
    lean.write_bytes(orjson.dumps(shop_lean))
    config = load_config(None, {"routing.force": "celery"})
    real = generate(SHOP / "manifest.json", config)
    assert [(f.name, f.text) for f in generate(lean, config).files] == [
        (f.name, f.text) for f in real.files
    ]
    assert set(orjson.loads((SHOP / "manifest.json").read_bytes())) >= UNREAD_SECTIONS
