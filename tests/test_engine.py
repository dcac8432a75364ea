import torch
from PIL import Image

from resfpn.serving.engine import Engine, Weights, architecture_key, cached_trace


def _image(w=64, h=48, colour=(200, 30, 30)):
    return Image.new("RGB", (w, h), colour)


def test_models_are_reused_across_input_sizes(tiny):
    engine = Engine()
    engine.run(tiny.replace(input_height=64, input_width=64), _image())
    engine.run(tiny.replace(input_height=96, input_width=128), _image())
    assert engine.builds == 1 and engine.forwards == 2
    assert architecture_key(tiny.replace(input_height=64)) == architecture_key(tiny.replace(input_height=96))


def test_repeated_runs_come_from_the_cache(tiny):
    engine = Engine()
    first = engine.run(tiny, _image())
    again = engine.run(tiny, _image())
    assert engine.forwards == 1 and again.cached and not first.cached
    assert all(torch.equal(first.levels[k], again.levels[k]) for k in first.levels)
    assert engine.cached_run(first.key) is not None
    engine.run(tiny, _image(colour=(0, 0, 255)))
    assert engine.forwards == 2


def test_same_seed_same_weights_other_seed_other_weights(tiny):
    a = Engine().run(tiny, _image(), Weights(seed=3)).levels["P2"]
    b = Engine().run(tiny, _image(), Weights(seed=3)).levels["P2"]
    c = Engine().run(tiny, _image(), Weights(seed=4)).levels["P2"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert Weights(seed=3).label == "seeded random weights (seed 3)"


def test_run_levels_match_the_trace(tiny):
    config = tiny.replace(input_height=100, input_width=140, policy="match", p7=True)
    run = Engine().run(config, _image(300, 200))
    t = cached_trace(config)
    assert {k: tuple(v.shape) for k, v in run.levels.items()} == {k: v.shape for k, v in t.levels.items()}
    assert run.image.size == (140, 100)


def test_models_cache_is_bounded(tiny):
    engine = Engine(max_models=2, max_runs=2)
    for width in (8, 16, 24):
        engine.run(tiny.replace(fpn_width=width), _image())
    assert len(engine._models) == 2 and len(engine._runs) == 2


def test_caches_are_bounded_by_bytes_but_keep_the_newest(tiny):
    engine = Engine(max_models=10, max_runs=10, max_bytes=1)
    engine.run(tiny, _image())
    engine.run(tiny.replace(fpn_width=16), _image())
    assert len(engine._models) == 1 and len(engine._runs) == 1
    engine.run(tiny.replace(fpn_width=16), _image())
    assert engine.forwards == 2  # the newest run was kept and served from the cache


def test_make_room_drops_cached_work_until_the_new_work_fits(tiny):
    engine = Engine()
    engine.run(tiny, _image())
    engine.run(tiny.replace(fpn_width=16), _image())
    held = engine.cached_bytes()
    engine.make_room(need=0, budget=held)
    assert engine.cached_bytes() == held  # everything still fits
    engine.make_room(need=1, budget=held)
    assert 0 < engine.cached_bytes() < held and len(engine._runs) == 1  # the oldest run went first
    engine.make_room(need=10**12, budget=10**12)
    assert engine.cached_bytes() == 0
