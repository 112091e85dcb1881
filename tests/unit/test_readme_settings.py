"""Every setting has its row in the README's configuration table (six had none)."""

from pathlib import Path

from corral.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    table = "\n".join(rows)
    missing = [name for name in Settings.model_fields if f"`{name}`" not in table]
    assert not missing, f"settings without a row in the README's configuration table: {missing}"
