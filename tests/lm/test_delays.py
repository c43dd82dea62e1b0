"""The delay ring alone: delays applied on the way in, undone on the way out, pauses."""

import torch

from moshi.lm.delays import DelayRing

DELAYS = (0, 1, 2, 1)  # streams 0-2 sampled by the model, stream 3 the user's
INITIAL = torch.tensor([90, 91, 92, 93])


def _sampled(step: int, batch: int = 1) -> torch.Tensor:
    """What the model samples at `step`: stream s gives its token of frame step - delay,
    100 * s + frame ([batch, 3, 1])."""
    return torch.tensor([100 * s + step - d for s, d in enumerate(DELAYS[:3])]).expand(batch, 3)[..., None]


def test_inputs_are_read_delay_steps_late_and_frames_come_back_whole():
    ring = DelayRing(DELAYS, INITIAL, batch_size=1)
    for t in range(6):
        ring.write_ahead(3, torch.tensor([[[300 + t]]]), None)
        inputs = ring.read()[0, :, 0].tolist()
        # Stream s reads what was produced at step t - 1 (the user's: step t - delay),
        # or its initial token while t <= delay.
        expected = [
            INITIAL[s].item() if t <= d else 100 * s + t - 1 - d if s < 3 else 300 + t - d
            for s, d in enumerate(DELAYS)
        ]
        assert inputs == expected
        ring.advance(None, [True])
        ring.write_sampled(_sampled(t), None)
        frame = ring.frame(3, [True], missing=-1)
        if t < 2:  # max_delay: the first frame is complete after step 2
            assert frame is None
        else:
            assert frame is not None and frame[0, :, 0].tolist() == [0 + t - 2, 100 + t - 2, 200 + t - 2]


def test_a_paused_item_keeps_its_tokens_and_a_reset_one_starts_over():
    ring = DelayRing(DELAYS, INITIAL, batch_size=2)
    for t in range(3):
        ring.write_ahead(3, torch.full((2, 1, 1), 300 + t), None)
        ring.read()
        ring.advance(None, [True, True])
        ring.write_sampled(_sampled(t, 2), None)
    cache = ring.cache.clone()
    mask = torch.tensor([True, False])
    ring.write_ahead(3, torch.full((2, 1, 1), 7), mask)
    ring.advance(mask, [True, False])
    ring.write_sampled(torch.full((2, 3, 1), 8), mask)
    frame = ring.frame(3, [True, False], missing=-1)
    assert torch.equal(ring.cache[1], cache[1]) and ring.offset.tolist() == [4, 3] and ring.steps == [4, 3]
    assert frame is not None and frame[1].eq(-1).all() and frame[0, :, 0].tolist() == [1, 101, 8]
    ring.reset([0])
    assert ring.steps == [0, 3] and ring.read()[0, :, 0].tolist() == INITIAL.tolist()
