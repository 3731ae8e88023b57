"""The README stays true: every setting is documented, and every documented setting exists."""

import re
from pathlib import Path

from core.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme():
    missing = [f"SCRM_{name.upper()}" for name in Settings.model_fields if f"SCRM_{name.upper()}" not in README]
    assert missing == []


def test_every_setting_in_the_readme_exists():
    documented = set(re.findall(r"\| `SCRM_([A-Z_]+)` \|", README))
    assert documented and documented <= {name.upper() for name in Settings.model_fields}
