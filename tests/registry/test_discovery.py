"""Entry-point discovery from installed metadata (``*.dist-info`` / ``*.egg-info``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fedpack._discovery import scan
from fedpack._names import normalize_name

if TYPE_CHECKING:
    from .conftest import FakeSite


def test_duplicate_distribution_counts_once_first_wins(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = tmp_path / "later"
    site.plugin("dup_mod", ["dup"])
    site.dist("dup-dist", "1.0", {"dup": "dup_mod"})
    site.dist("Dup_Dist", "2.0", {"dup": "dup_mod"}, root=later)
    registry = site.registry(paths=[str(site.root), str(later)])
    rows = registry.list_packers()
    assert [(r.distribution, r.version, r.state) for r in rows] == [
        ("dup-dist", "1.0", "available")
    ]
    assert registry.get_packer_class("dup").__module__ == "dup_mod"
    # the other order: the other copy wins
    rows = site.registry(paths=[str(later), str(site.root)]).list_packers()
    assert [(r.distribution, r.version) for r in rows] == [("Dup_Dist", "2.0")]


def test_egg_info(site: FakeSite) -> None:
    site.plugin("eggy_mod", ["eggy"])
    site.dist("eggy-dist", "3.1", {"eggy": "eggy_mod"}, egg=True)
    assert (site.root / "eggy_dist.egg-info" / "PKG-INFO").exists()
    registry = site.registry()
    [row] = registry.list_packers()
    assert (row.name, row.distribution, row.version) == ("eggy", "eggy-dist", "3.1")
    assert registry.get_packer_class("eggy").__module__ == "eggy_mod"


def test_entry_point_module_attr_and_extras(site: FakeSite) -> None:
    site.module(
        "attr_mod",
        """
        import fedpack
        import fedpack_fake_events


        class Plugins:
            class Inner:
                @staticmethod
                @fedpack.hookimpl
                def fedpack_register_packers(register):
                    fedpack_fake_events.events.append(("hook", "attr_mod"))

                    class Attr(fedpack.ParameterPacker[None]):
                        name = "attr"

                        def encode(self, model_weights, additional_parameters):
                            return fedpack.Encoded([("weights", model_weights)])

                        def decode(self, sections, meta):
                            return sections["weights"], None

                        def split_unframed(self, packed):
                            return fedpack.Sections.split(packed, [("weights", len(packed))])

                    register(Attr)
        """,
    )
    site.dist(
        "attr-dist",
        "1.0",
        entry_points=(
            "# a comment\n[console_scripts]\nattr = not_a_packer:main\n\n"
            "[fedpack.packers]\n; another comment\nAttr = attr_mod : Plugins.Inner [fast, small]\n"
            "\n[other.group]\nx = y\n"
        ),
    )
    registry = site.registry()
    [row] = registry.list_packers()
    assert (row.name, row.entry_point) == ("attr", "attr_mod : Plugins.Inner")
    assert registry.get_packer_class("attr").name == "attr"
    assert site.count("hook", "attr_mod") == 1


def test_metadata_fallback_to_directory_name(site: FakeSite) -> None:
    path = site.dist("nometa", "4.2", {"nometa": "x"})
    (path / "METADATA").unlink()
    [row] = site.registry().list_packers()
    assert (row.distribution, row.version) == ("nometa", "4.2")


def test_distribution_without_entry_points_or_group(site: FakeSite) -> None:
    path = site.dist("plain", "1.0", entry_points="[console_scripts]\nplain = plain:main\n")
    site.dist("bare", "1.0", {})
    (site.root / "bare-1.0.dist-info" / "entry_points.txt").unlink()
    assert path.exists()
    assert site.registry().list_packers() == []


def test_undecodable_metadata_does_not_break_discovery(site: FakeSite) -> None:
    """A stray non-UTF-8 byte in an unrelated (or a packer's) distribution is tolerated."""
    other = site.dist("other", "1.0", entry_points="[console_scripts]\nx = y\n")
    (other / "entry_points.txt").write_bytes(b"[console_scripts]\n# caf\xe9\nx = y\n")
    site.packer_dist("latin", "latin")
    metadata = site.root / "latin-1.0.dist-info" / "METADATA"
    metadata.write_bytes(b"Name: latin\nVersion: 1.0\nSummary: caf\xe9\n\nbody \xff\n")
    registry = site.registry()
    [row] = registry.list_packers()
    assert (row.name, row.distribution, row.version) == ("latin", "latin", "1.0")
    assert registry.get_packer_class("latin").name == "latin"


def test_unreadable_entry_points_are_skipped(site: FakeSite) -> None:
    path = site.dist("weird", "1.0", {"weird": "x"})
    (path / "entry_points.txt").unlink()
    (path / "entry_points.txt").mkdir()  # open() works on a directory, read() fails
    site.dist("fine", "1.0", {"fine": "y"})
    assert [r.name for r in site.registry().list_packers()] == ["fine"]


def test_large_entry_points_file(site: FakeSite) -> None:
    scripts = "".join(f"tool{i} = pkg.module{i}:main\n" for i in range(5000))  # > 64 KiB
    text = f"[console_scripts]\n{scripts}\n[fedpack.packers]\nbig = big_mod\n"
    assert len(text) > 1 << 17
    site.dist("big", "1.0", entry_points=text)
    [row] = site.registry().list_packers()
    assert (row.name, row.entry_point) == ("big", "big_mod")


def test_scan_skips_missing_and_non_directory_paths(site: FakeSite, tmp_path: Path) -> None:
    site.dist("real", "1.0", {"real": "real_mod"})
    afile = tmp_path / "archive.zip"
    afile.write_bytes(b"PK")
    found = scan([str(tmp_path / "missing"), str(afile), str(site.root)])
    assert list(found) == ["real"]
    [ep] = found["real"]
    assert (ep.value, ep.label) == ("real_mod", "real==1.0")


def test_default_paths_are_sys_path(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.packer_dist("on-path", "onpath")
    registry = site.registry(paths=None)
    assert "onpath" in registry.names()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site.root)])
    registry.refresh()
    assert "onpath" not in registry.names()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Scaffold", "scaffold"), ("layer-names", "layer_names"), (" SPARSE_coo ", "sparse_coo")],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected
