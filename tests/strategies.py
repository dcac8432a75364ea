"""Hypothesis strategies shared by the property tests."""

from hypothesis import strategies as st

from resfpn.model.config import P6_SOURCES, POLICIES, SKIP_OPTIONS


def small_designs(max_size: int) -> st.SearchStrategy[dict]:
    """Configuration fields of small designs (tiny widths, inputs up to ``max_size``), every option;
    some are refused by ``Config`` and many have a shape mismatch."""
    return st.builds(
        dict,
        input_height=st.integers(1, max_size),
        input_width=st.integers(1, max_size),
        batch=st.integers(1, 2),
        widths=st.lists(st.sampled_from([4, 8, 12, 16]), min_size=4, max_size=4),
        blocks=st.lists(st.integers(1, 2), min_size=4, max_size=4),
        block=st.sampled_from(["basic", "bottleneck"]),
        stride_in=st.sampled_from(["3x3", "1x1"]),
        skip=st.sampled_from(list(SKIP_OPTIONS)),
        stem_width=st.sampled_from([4, 8, 16]),
        fpn_from=st.sampled_from(["C2", "C3"]),
        fpn_width=st.integers(1, 8),
        upsample=st.sampled_from(["nearest", "bilinear"]),
        policy=st.sampled_from(list(POLICIES)),
        p6=st.sampled_from(P6_SOURCES),
        p7=st.booleans(),
    )
