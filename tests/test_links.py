from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resfpn import PRESETS, Config
from resfpn.model.config import BLOCKS, FPN_FROM, P6_SOURCES, POLICIES, SKIP_OPTIONS, STRIDE_IN, UPSAMPLE
from resfpn.share.links import config_from_query, design_link, design_query


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips(name):
    config = PRESETS[name]
    assert config_from_query(design_query(config)) == (config, [])
    assert config_from_query(design_query(config, preset=name)) == (config, [])


def test_the_issue_link_reads_as_written():
    config, notes = config_from_query("?input_height=225&input_width=225&skip=A&widths=64,128,256,512&preset=resnet50")
    assert notes == []
    assert config == Config.preset("resnet50", input_height=225, input_width=225, skip="A", widths=(64, 128, 256, 512))


def test_a_link_names_its_preset_and_only_what_differs():
    config = Config.preset("resnet50", input_height=225, input_width=225, skip="A")
    assert design_query(config) == "preset=resnet50&input_height=225&input_width=225&skip=A"
    assert design_query(Config()) == ""
    assert design_query(Config(p7=True, widths=(8, 8, 16, 16))) == "widths=8,8,16,16&p7=true"
    assert design_link("https://host.hf.space/?old=1#x", Config(skip="D")) == "https://host.hf.space/?skip=D"


def test_hand_typed_spellings_are_accepted():
    config, notes = config_from_query("skip=a&P7=1&fpn-from=c3&block=Bottleneck&blocks=(1, 1, 1, 1)")
    assert notes == []
    assert (config.skip, config.p7, config.fpn_from, config.block, config.blocks) == ("A", True, "C3", "bottleneck",
                                                                                     (1, 1, 1, 1))


@pytest.mark.parametrize(
    "query, field, value, note",
    [
        ("skip=E", "skip", "B", "skip='E': unknown value; allowed: 'A', 'B', 'C', 'D' — kept B"),
        ("input_height=abc", "input_height", 224, "input_height='abc': expected a whole number — kept 224"),
        ("input_height=0", "input_height", 224, "input_height=0: must be between 1 and 8192 — kept 224"),
        ("widths=64,128", "widths", (64, 128, 256, 512), "widths='64,128': expected four comma-separated"),
        ("p7=maybe", "p7", False, "p7='maybe': expected true or false"),
        ("p6=none&p7=true", "p7", False, "p7=True needs a P6"),
        ("preset=resnet51&skip=A", "widths", (64, 128, 256, 512), "preset='resnet51': unknown preset"),
        ("colour=red&skip=A", "skip", "A", "unknown parameter 'colour' ignored; known: preset, input_height"),
        ("skip=", "skip", "B", "skip='': no value given — kept B"),
    ],
)
def test_bad_parameters_become_notes_and_keep_the_starting_value(query, field, value, note):
    config, notes = config_from_query(query)
    assert getattr(config, field) == value
    assert len(notes) == 1 and note in notes[0]


def test_a_preset_is_the_fallback_for_its_bad_fields():
    config, notes = config_from_query("preset=resnet50&widths=64,128,256,510&skip=C")
    assert config == Config.preset("resnet50", skip="C")
    assert "widths[3]=510" in notes[0] and "kept 256,512,1024,2048" in notes[0]


def test_fields_that_only_fit_together_are_both_applied():
    config, notes = config_from_query("preset=resnet50&widths=6,12,24,48&expansion=3")
    assert notes == [] and config.widths == (6, 12, 24, 48) and config.expansion == 3


def _configs():
    def build(kw):
        try:
            return Config(**kw)
        except ValueError:
            return None

    fields_ = st.fixed_dictionaries({
        "input_height": st.integers(1, 8192), "input_width": st.integers(1, 8192),
        "input_channels": st.integers(1, 64), "batch": st.integers(1, 64),
        "widths": st.tuples(*[st.integers(1, 8192)] * 4), "blocks": st.tuples(*[st.integers(1, 64)] * 4),
        "block": st.sampled_from(BLOCKS), "stride_in": st.sampled_from(STRIDE_IN), "expansion": st.integers(1, 8),
        "stem_width": st.integers(1, 4096), "skip": st.sampled_from(list(SKIP_OPTIONS)),
        "fpn_from": st.sampled_from(FPN_FROM), "fpn_width": st.integers(1, 4096),
        "upsample": st.sampled_from(UPSAMPLE), "policy": st.sampled_from(list(POLICIES)),
        "p6": st.sampled_from(P6_SOURCES), "p7": st.booleans(),
    })
    return fields_.map(build).filter(lambda c: c is not None)


@settings(max_examples=200, deadline=None)
@given(_configs(), st.sampled_from([None, *PRESETS]))
def test_random_designs_round_trip(config, preset):
    assert config_from_query(design_query(config, preset=preset)) == (config, [])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_reading_never_raises_for_any_text(text):
    config, notes = config_from_query(text)
    assert isinstance(config, Config) and all(isinstance(n, str) for n in notes)


names = st.sampled_from(["preset", "skip", "widths", "p7", "input_height", "block", "expansion", "x"] +
                        [f.name for f in fields(Config)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, st.text(max_size=20))))
def test_reading_never_raises_for_any_parameters(pairs):
    config, notes = config_from_query(pairs)
    assert isinstance(config, Config)
    assert config_from_query(design_query(config)) == (config, [])


@pytest.mark.parametrize("query", ["__theme=dark", "__theme=light&skip=A", "skip=A&__dark_mode=1"])
def test_gradio_own_parameters_are_not_the_designs_and_get_no_note(query):
    config, notes = config_from_query(query)
    assert notes == []
    assert config.skip == ("A" if "skip" in query else "B")
