"""Property tests: whatever a user sends, the answer is a consistent result or a readable refusal."""

import gradio as gr
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app
from resfpn import Config, ConfigError, build_model, trace
from strategies import small_designs

small_configs = small_designs(max_size=160)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_configs)
def test_every_configuration_runs_consistently_or_is_refused_or_diagnosed(d):
    try:
        config = Config(**d)
    except ConfigError as err:
        assert str(err)  # refused with a message, e.g. P7 without P6
        return
    t = trace(config)
    if t.mismatch is not None:
        assert t.mismatch.cause and t.mismatch.fixes  # diagnosed, with a way out
        return
    with torch.inference_mode():
        out = build_model(config)(torch.randn(config.input_shape))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: v.shape for k, v in t.levels.items()}


any_value = st.one_of(st.none(), st.booleans(), st.integers(-10, 10_000), st.floats(allow_nan=True),
                      st.text(max_size=8), st.lists(st.integers(-5, 5000), max_size=5))
hostile_configs = st.dictionaries(st.sampled_from(list(Config.__dataclass_fields__) + ["bogus"]), any_value,
                                  max_size=6)


@settings(max_examples=2000, deadline=None)
@given(hostile_configs)
def test_the_api_answers_any_json_with_a_report_or_a_readable_error(d):
    try:
        report = app.analyze(d, None)
    except gr.Error as err:
        assert err.message and "Traceback" not in err.message
        return
    assert report["config"] == Config(**report["config"]).to_dict()
