"""Hypothesis strategies shared by the metadata property tests."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def metadata_values(plausible: Sequence[str]) -> st.SearchStrategy[str]:
    """Plausible values for some keys, arbitrary text otherwise."""
    return st.one_of(st.sampled_from(list(plausible)), st.text(max_size=30))


def metadata_maps(
    keys: Sequence[str], plausible: Sequence[str]
) -> st.SearchStrategy[dict[str, str]]:
    """Maps drawing mostly real key names (and some arbitrary ones) to plausible or arbitrary
    values, as a user's trigger metadata might look."""
    return st.dictionaries(
        st.one_of(st.sampled_from(list(keys)), st.text(max_size=12)),
        metadata_values(plausible),
        max_size=8,
    )
