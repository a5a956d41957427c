"""The model registry: bases, patches, named models, series, and model expressions."""

from __future__ import annotations

import pkgutil

import pytest

from ksmrepro.errors import ModelError
from ksmrepro.models import patches as patch_modules
from ksmrepro.models import registry
from ksmrepro.models.base import Switches

# --- what is registered --------------------------------------------------------------------


def test_bases_and_default():
    assert {"v6.1", "v7.0-rc6"} <= set(registry.BASES)
    assert registry.DEFAULT_MODEL in registry.BASES
    assert registry.BASES["v7.0-rc6"].switches == Switches()


def test_every_patch_module_is_registered():
    modules = {i.name for i in pkgutil.iter_modules(patch_modules.__path__)
               if not i.name.startswith("_")}
    assert {n.replace("-", "_") for n in registry.PATCHES} == modules


@pytest.mark.parametrize("name", sorted(registry.PATCHES))
def test_patch_metadata(name):
    p = registry.PATCHES[name]
    assert p.name == name
    assert p.title
    assert p.reference
    assert p.function
    assert p.explanation
    assert not (p.sets and p.parts)  # a group sets nothing itself
    for switch in p.sets:
        assert hasattr(Switches(), switch), f"{name} sets unknown switch {switch}"
    for other in (*p.requires, *p.parts):
        assert other in registry.PATCHES


def test_the_ksm_rmap_walk_series_reads_like_the_mailing_list():
    s = registry.SERIES["ksm-rmap-walk"]
    assert s.base == "v7.0-rc6"
    titles = [registry.PATCHES[p].title.lower() for p in s.patches]
    assert titles == [
        "ksm: initialize the addr only once in rmap_walk_ksm",
        "ksm: optimize rmap_walk_ksm by passing a suitable address range",
        "ksm: add linear_page_index into ksm_rmap_item",
        "ksm: optimize rmap_walk_ksm by passing a suitable page index",
    ]
    assert s.points()[0] == "v7.0-rc6"
    assert s.points()[-1] == "+".join(("v7.0-rc6", *s.patches))
    for point in s.points():
        registry.resolve(point)  # every point of a series resolves


def test_named_models_resolve():
    for name, named in registry.NAMED.items():
        assert registry.resolve(name).switches == registry.resolve(named.expr).switches


# --- expressions ---------------------------------------------------------------------------


def test_named_plus_patch():
    m = registry.resolve("mm-2026-04+ksm-pte-mkold")
    assert m.name == "mm-2026-04+ksm-pte-mkold"
    assert m.base.name == "v7.0-rc6"
    assert [p.name for p in m.patches] == ["ksm-rmap-walk-address-range", "ksm-pte-mkold"]
    assert m.switches.changed_from(Switches()) == {
        "ksm_rmap_range": ("full", "address"),
        "ksm_replace_pte_young": (True, False),
        "ksm_kpage_mark_accessed": (True, False),
    }
    assert registry.split_expression(" mm-2026-04 + ksm-pte-mkold ") == (
        "v7.0-rc6", ["ksm-rmap-walk-address-range", "ksm-pte-mkold"])


def test_a_group_patch_expands_to_its_parts():
    m = registry.resolve("mm-2026-08")
    assert [p.name for p in m.patches] == ["ksm-rmap-item-linear-page-index",
                                           "ksm-rmap-walk-page-index"]
    assert m.switches.ksm_rmap_range == "linear_page_index"


def test_unknown_model_lists_known_names():
    with pytest.raises(ModelError) as e:
        registry.resolve("v7.0-rc7")
    msg = str(e.value)
    assert "unknown model 'v7.0-rc7'" in msg
    assert "did you mean 'v7.0-rc6'?" in msg
    for name in ("v6.1", "v7.0-rc6", "mm-2026-04", "mm-2026-08"):
        assert name in msg


def test_unknown_patch_lists_known_patches():
    with pytest.raises(ModelError) as e:
        registry.resolve("v7.0-rc6+ksm-pte-mkld")
    msg = str(e.value)
    assert "unknown patch 'ksm-pte-mkld'; did you mean 'ksm-pte-mkold'?" in msg
    assert all(p in msg for p in registry.PATCHES)


def test_requires_ordering():
    with pytest.raises(ModelError, match="needs ksm-rmap-item-linear-page-index first"):
        registry.resolve("v7.0-rc6+ksm-rmap-walk-page-index")
    with pytest.raises(ModelError, match="needs ksm-rmap-item-linear-page-index first"):
        registry.resolve("v7.0-rc6+ksm-rmap-walk-page-index+ksm-rmap-item-linear-page-index")
    m = registry.resolve("v7.0-rc6+ksm-rmap-item-linear-page-index+ksm-rmap-walk-page-index")
    assert m.switches == registry.resolve("mm-2026-08").switches


@pytest.mark.parametrize("expr", ["", "+ksm-pte-mkold", "v7.0-rc6+", "v7.0-rc6++ksm-pte-mkold"])
def test_malformed_expressions(expr):
    with pytest.raises(ModelError, match="expected BASE"):
        registry.resolve(expr)


def test_a_patch_applied_twice():
    with pytest.raises(ModelError, match="applied twice"):
        registry.resolve("mm-2026-04+ksm-rmap-walk-address-range")


def test_compose_names_and_knobs():
    m = registry.compose("v6.1", ["ksm-pte-mkold"], (("pages_to_scan", 200),))
    assert m.name == "v6.1+ksm-pte-mkold"
    assert m.knobs == (("pages_to_scan", 200),)
    assert m.switches.lru_batch_size == 15
    with pytest.raises(ModelError, match="unknown base 'v9'"):
        registry.compose("v9", [])


def test_unknown_series_lists_known():
    with pytest.raises(ModelError, match=r"unknown series 'ksm-rmap'.*ksm-rmap-walk"):
        registry.get_series("ksm-rmap")
