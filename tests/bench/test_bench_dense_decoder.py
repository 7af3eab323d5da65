"""The dense masked decoder computes the sparse decoder's logits at the active sites."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from qgn.bench.dense_decoder import dense_masked_decode, masks_of_outputs
from qgn.bench.site_masks import gtc_site_masks
from qgn.data.synthetic import make_scene
from qgn.model.decoder import QGNDecoder
from qgn.propagation import Scheme

CHANNELS = (16, 16, 32, 64, 128)
H, W = 64, 96


def _decoder_and_inputs():
    torch.manual_seed(0)
    decoder = QGNDecoder(CHANNELS, num_classes=4, width=0.25, units=(1, 2, 1, 1, 1))
    for m in decoder.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    decoder.eval()
    feats = [torch.randn(1, c, H // s, W // s) for c, s in zip(CHANNELS, (2, 4, 8, 16, 32))]
    return decoder, feats, torch.randn(1, 3, H, W)


@pytest.mark.parametrize("scheme_name", ["all", "gtc", "pc"])
def test_dense_masked_logits_equal_sparse_logits_at_active_sites(scheme_name: str) -> None:
    decoder, feats, image = _decoder_and_inputs()
    gt = gtc_site_masks(make_scene(5, H, W)[1], 8, 255) if scheme_name == "gtc" else None
    with torch.no_grad():
        sparse = decoder(feats, image, Scheme(scheme_name), gt)
    dense = dense_masked_decode(decoder, feats, image, masks_of_outputs(sparse))
    assert sorted(dense) == sorted(o.level for o in sparse)
    for out in sparse:
        c = out.coords
        at_sites = dense[out.level][c[:, 0], :, c[:, 1], c[:, 2]]
        torch.testing.assert_close(at_sites, out.logits, rtol=1e-4, atol=1e-4)


def test_masks_of_outputs_marks_exactly_the_computed_sites() -> None:
    decoder, feats, image = _decoder_and_inputs()
    with torch.no_grad():
        out = decoder(feats, image, Scheme("all"))
    masks = masks_of_outputs(out)
    assert all(bool(m.all()) for m in masks.values())
    assert {l: tuple(m.shape) for l, m in masks.items()} == {l: (1, H >> l, W >> l) for l in range(6)}


def test_dense_masked_decoder_rejects_training_mode_and_gaps() -> None:
    decoder, feats, image = _decoder_and_inputs()
    full = {l: torch.ones(1, H >> l, W >> l, dtype=torch.bool) for l in range(6)}
    with pytest.raises(ValueError, match="levels 5, 4"):
        dense_masked_decode(decoder, feats, image, {5: full[5], 3: full[3]})
    decoder.train()
    with pytest.raises(ValueError, match="eval"):
        dense_masked_decode(decoder, feats, image, full)


def test_all_at_inference_runs_as_the_dense_decoder_and_resumes() -> None:
    """All under no_grad takes the dense route (`_forward_all`); its outputs equal the level-by-
    level sparse route's (grad on: the sparse convolutions), a run resumed from a shallower one
    equals a run from the root, and every level but the finest has sent all its sites on."""
    decoder, feats, image = _decoder_and_inputs()
    with torch.no_grad():
        dense_route = decoder(feats, image, Scheme("all"))
        shallow = decoder(feats, image, Scheme("all", depth=2))
        assert shallow[-1].level == 2 and shallow[-1].features.num_channels == decoder.channels[3]
        resumed = decoder(feats, image, Scheme("all"), resume=shallow)
    sparse_route = decoder(feats, image, Scheme("all"))  # grad on: step by step, sparse convolutions
    assert [o.level for o in dense_route] == [o.level for o in sparse_route] == [o.level for o in resumed] == list(range(5, -1, -1))
    for d, s, r in zip(dense_route, sparse_route, resumed):
        torch.testing.assert_close(d.logits, s.logits.detach(), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(r.logits, d.logits)
        assert d.num_sites == s.num_sites and d.macs == s.macs
        assert torch.equal(d.coords, s.coords)
        if d.level > 0:
            assert bool(d.selected.all()) and d.selected.shape == (d.num_sites,)
    assert dense_route[-1].selected is None and dense_route[-1].features.num_channels == 0
    assert all(o.features.num_channels == 0 for o in dense_route[1:-1])  # released on the way down
    with torch.no_grad():
        shallow = decoder(feats, image, Scheme("all", depth=2))
        same = decoder(feats, image, Scheme("all", depth=3), resume=shallow)  # nothing left to compute
    assert same[-1] is shallow[-1] and shallow[-1].features.num_channels == decoder.channels[3]


def test_all_dense_route_keeps_the_canonical_order_of_a_batch() -> None:
    """Two images in one batch: the dense route's rows are (b, y, x) row-major, as the sites say."""
    decoder, feats, image = _decoder_and_inputs()
    feats2 = [torch.cat((f, torch.randn_like(f))) for f in feats]
    image2 = torch.cat((image, torch.randn_like(image)))
    with torch.no_grad():
        dense_route = decoder(feats2, image2, Scheme("all"))
    sparse_route = decoder(feats2, image2, Scheme("all"))
    for d, s in zip(dense_route, sparse_route):
        assert torch.equal(d.coords, s.coords) and d.features.batch_size == 2
        torch.testing.assert_close(d.logits, s.logits.detach(), rtol=1e-4, atol=1e-4)


def test_all_runs_share_nothing_a_write_could_change() -> None:
    """All's outputs reuse per-shape parts between runs; a caller writing into one run's
    selection must not change the next run's."""
    decoder, feats, image = _decoder_and_inputs()
    with torch.no_grad():
        first = decoder(feats, image, Scheme("all"))
        first[0].selected[0] = False
        second = decoder(feats, image, Scheme("all"))
    assert all(bool(o.selected.all()) for o in second[:-1])
    assert [o.macs for o in first] == [o.macs for o in second]
    # the write stays in the output written to: the selection is a tensor of its own (made when
    # first read), not a view of anything shared, and reads the same each time
    assert not bool(first[0].selected[0]) and int(first[0].selected.sum()) == first[0].num_sites - 1
    assert first[1].selected.data_ptr() != second[1].selected.data_ptr()
    assert first[1].selected.stride() == (1,) and first[1].selected is first[1].selected


def test_a_selection_set_on_an_all_output_replaces_every_site() -> None:
    decoder, feats, image = _decoder_and_inputs()
    with torch.no_grad():
        outputs = decoder(feats, image, Scheme("all"))
    mine = torch.zeros(outputs[0].num_sites, dtype=torch.bool)
    outputs[0].selected = mine
    assert outputs[0].selected is mine
    outputs[1].selected = None
    assert outputs[1].selected is None
    copy = dataclasses.replace(outputs[2])  # a selection not made yet is carried, and made alike
    assert copy.selected is not None and bool(copy.selected.all()) and copy.selected.shape == (copy.num_sites,)


def test_a_copy_of_the_decoder_never_reads_the_shapes_it_remembers() -> None:
    """All remembers per-shape parts in a cache the inference thread adds to while another thread
    copies the model (the uncertainty order, the fine-tune): copying it failed in CI with "dictionary
    changed size during iteration". A copy starts without them, gives the same logits, and the
    original keeps its own."""
    import copy

    class BeingWritten(dict):  # iterating it is what failed: a copy must not
        def items(self):
            raise RuntimeError("dictionary changed size during iteration")

        __iter__ = items

    decoder, feats, image = _decoder_and_inputs()
    with torch.no_grad():
        want = [o.logits for o in decoder(feats, image, Scheme("all"))]
    remembered = dict(decoder._full_parts)
    assert remembered
    decoder._full_parts = BeingWritten(remembered)
    twin = copy.deepcopy(decoder)
    assert twin._full_parts == {} and dict.__len__(decoder._full_parts) == len(remembered)
    with torch.no_grad():
        got = [o.logits for o in twin(feats, image, Scheme("all"))]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
