"""The README is a front door and docs/ is the manual: both kept true to the code."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _config_reference() -> object:
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "scripts" / "config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_lists_every_field_as_the_code_describes_it() -> None:
    reference = _config_reference()
    page = (DOCS / "configuration.md").read_text()
    assert page == reference.page_with_reference(page), (  # type: ignore[attr-defined]
        "docs/configuration.md is stale: run `make config-reference`"
    )
    from tierserve.config import TierConfig

    for name, field in TierConfig.model_fields.items():
        assert f"| `{name}` |" in page
        if field.description:
            assert " ".join(field.description.split()) in page


def test_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert "make serve" in readme and "make test" in readme
    linked = set(LINK.findall(readme))
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"docs/{page.name}" in linked, f"README does not point to docs/{page.name}"


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *DOCS.glob("*.md")], ids=str
)
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_architecture_page_names_every_module() -> None:
    page = (DOCS / "architecture.md").read_text()
    source = ROOT / "src" / "tierserve"
    missing = [
        str(path.relative_to(source))
        for path in sorted(source.rglob("*.py"))
        if path.name != "__init__.py" and f"`{path.relative_to(source)}`" not in page
    ]
    assert not missing, f"docs/architecture.md does not name {missing}"
